"""System checks for deployments of the event stream."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=False)
def stream_deployment_checks(app_configs, **kwargs):
    warnings = []
    # Persistent connections are fine here: requests run their sync work on one
    # thread (docreview.handler) and the stream's queries on a small executor.
    # Unchecked, though, a kept connection that the database dropped (a
    # restart, a failover) fails the next request made on it.
    for alias, db in settings.DATABASES.items():
        if db.get("CONN_MAX_AGE") != 0 and not db.get("CONN_HEALTH_CHECKS"):
            warnings.append(Warning(
                f"DATABASES[{alias!r}] keeps connections (CONN_MAX_AGE={db.get('CONN_MAX_AGE')}) "
                "without CONN_HEALTH_CHECKS.",
                hint="After a database restart, the first request on each kept connection would fail. "
                     "Set CONN_HEALTH_CHECKS = True, or CONN_MAX_AGE = 0.",
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
