"""Prometheus metrics of the event stream.

Counters are bumped once per event and per batch, never once per delivery
inside the fan-out loop: the hot path adds a count, it does not loop to count.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

STREAMS_OPEN = Gauge("docreview_streams_open", "Event streams open in this process", multiprocess_mode="livesum")
EVENTS_PUBLISHED = Counter("docreview_events_published_total", "Events handed to the channel layer")
EVENTS_DELIVERED = Counter("docreview_events_delivered_total", "Event frames queued to open streams")
EVENTS_REPLAYED = Counter("docreview_events_replayed_total", "Events sent from the table on (re)connect")
GAP_FILLS = Counter("docreview_gap_fills_total", "Times a hub filled a sequence gap from the table")
PUBLISH_FAILURES = Counter("docreview_publish_failures_total", "Channel-layer publishes that failed")
DISCONNECTS = Counter("docreview_stream_disconnects_total", "Event streams closed, by reason", ["reason"])
FALLBACK_MODE = Gauge(
    "docreview_fallback_mode", "1 while this process reads events from the table because the layer is down",
    multiprocess_mode="max",
)
DELIVERY_LATENCY = Histogram(
    "docreview_delivery_latency_seconds",
    "From publish to the frame being queued to the streams of this process",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

PROCESS_RSS = Gauge("docreview_process_resident_memory_bytes", "Resident memory of this server process",
                    multiprocess_mode="livesum")


def refresh_process_gauges() -> None:
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        import resource

        PROCESS_RSS.set(pages * resource.getpagesize())
    except OSError:
        pass
