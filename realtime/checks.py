"""System checks for deployments of the event stream."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=False)
def stream_deployment_checks(app_configs, **kwargs):
    warnings = []
    if getattr(settings, "ASGI_APPLICATION", None):
        for alias, db in settings.DATABASES.items():
            if db.get("CONN_MAX_AGE"):
                warnings.append(Warning(
                    f"DATABASES[{alias!r}]['CONN_MAX_AGE'] is {db['CONN_MAX_AGE']} under ASGI.",
                    hint="Each sync_to_async call may run on another thread; persistent connections pile up "
                         "one per thread and are never closed. Use 0 (or a pooler such as pgbouncer).",
                    id="realtime.W001",
                ))
    workers = os.environ.get("WEB_CONCURRENCY", "1")
    if workers.isdigit() and int(workers) > 1 and not settings.REDIS_URL:
        warnings.append(Warning(
            f"WEB_CONCURRENCY is {workers} but REDIS_URL is not set.",
            hint="Without Redis each process has its own in-memory channel layer, limits and presence: "
                 "streams on one process miss live events written through another. Set REDIS_URL.",
            id="realtime.W002",
        ))
    lifetime = settings.SSE_MAX_LIFETIME_SECONDS
    if lifetime and lifetime >= settings.CHANNEL_GROUP_EXPIRY:
        warnings.append(Warning(
            "SSE_MAX_LIFETIME_SECONDS is not below CHANNEL_GROUP_EXPIRY.",
            hint="Streams should be recycled before their layer group membership could expire.",
            id="realtime.W003",
        ))
    return warnings
