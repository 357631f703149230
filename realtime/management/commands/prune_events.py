"""Apply event retention: age (EVENT_RETENTION_DAYS) and a per-key cap.

Safe while serving: each key's ``first_kept_id`` is raised before its rows are
deleted, so a stream asking for a pruned id gets ``stream.reset`` rather than a
silent gap, and every server process is told at once (a hub that keeps the
key's recent frames in memory stops replaying the pruned ones; without the
layer it learns it at its next resync).  Also drops expired idempotency keys
and old revocations.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from realtime.models import Event, IdempotencyKey, Revocation, Stream
from realtime.publish import announce_pruned


class Command(BaseCommand):
    help = "Delete events past EVENT_RETENTION_DAYS or beyond EVENT_RETENTION_MAX_PER_DOCUMENT per document."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=settings.EVENT_RETENTION_DAYS)
        parser.add_argument("--max-per-key", type=int, default=settings.EVENT_RETENTION_MAX_PER_DOCUMENT)

    def handle(self, *args, days: int, max_per_key: int, **options):
        horizon = timezone.now() - timedelta(days=days)
        deleted = 0
        for stream in Stream.objects.all().iterator():
            newest_old = Event.objects.filter(stream=stream, created_at__lt=horizon).aggregate(m=Max("seq"))["m"] or 0
            keep_from = max(newest_old + 1, stream.last_id - max_per_key + 1, stream.first_kept_id)
            if keep_from <= stream.first_kept_id:
                continue
            with transaction.atomic():
                Stream.objects.filter(pk=stream.pk, first_kept_id__lt=keep_from).update(first_kept_id=keep_from)
            announce_pruned(key=stream.key, first_kept=keep_from)
            count, _ = Event.objects.filter(stream=stream, seq__lt=keep_from).delete()
            deleted += count
        idem, _ = IdempotencyKey.objects.filter(
            created_at__lt=timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)).delete()
        revocations, _ = Revocation.objects.filter(created_at__lt=timezone.now() - timedelta(days=1)).delete()
        self.stdout.write(f"pruned {deleted} events, {idem} idempotency keys, {revocations} revocations")
