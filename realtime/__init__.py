"""The event log and its live delivery: per-key gap-free sequences, the
per-process hub that fans a published event out to local streams, and the
Server-Sent Events endpoint.  Knows nothing of documents or comments; it asks
the domain through ``settings.REALTIME_ACCESS_POLICY``."""
