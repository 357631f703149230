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


class Revocation(models.Model):
    """A user's streams must close (on one key, or everywhere).

    Written in the transaction that took the access away, so it holds even
    when the channel layer is down: every hub polls this table each second
    besides receiving the layer's fast-path message.
    """

    user_id = models.BigIntegerField(null=True, blank=True)  # None: every user of the key
    key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"revoke user {self.user_id or 'every user'} on {self.key or 'every key'}"


class IdempotencyKey(models.Model):
    """The first response to a write sent with an ``Idempotency-Key``.

    Claimed in the same transaction as the write itself, so a retry that races
    the first attempt waits for it and then answers what it answered.
    """

    user_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True)
    content_type = models.CharField(max_length=100, blank=True, default="")
    body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user_id", "key"], name="realtime_idempotency_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
