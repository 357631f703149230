"""The event log: one gap-free sequence per stream key."""

from __future__ import annotations

from django.db import models


class Stream(models.Model):
    """A key (a document's path) and the last sequence number issued for it.

    The row is the lock that orders a key's events: ``record`` takes it with
    ``select_for_update`` so sequence numbers are issued in commit order.
    """

    key = models.CharField(max_length=255, unique=True)
    last_id = models.BigIntegerField(default=0)
    # Lowest id still kept after pruning; a Last-Event-ID below it cannot be
    # served and gets stream.reset.
    first_kept_id = models.BigIntegerField(default=1)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} (last {self.last_id})"


class Event(models.Model):
    """One persisted event: ``seq`` is 1, 2, 3, ... per stream, never reused."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=64)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["stream_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="realtime_event_stream_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.stream_id}#{self.seq} {self.type}"
