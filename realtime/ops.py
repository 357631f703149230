"""Operations endpoints: ``/healthz`` and ``/metrics`` (spec §5)."""

from __future__ import annotations

import asyncio
import hmac
import os

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from . import metrics

HEALTH_GROUP = "rt.healthz"


def _db_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        connection.close()


async def _layer_ok() -> bool:
    try:
        await asyncio.wait_for(get_channel_layer().group_send(HEALTH_GROUP, {"type": "healthz"}), timeout=2)
        return True
    except Exception:  # noqa: BLE001
        return False


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 ``{"db": "ok", "layer": "ok"}``, or 503 naming what failed."""
    db_ok, layer_ok = await asyncio.gather(sync_to_async(_db_ok, thread_sensitive=False)(), _layer_ok())
    body = {"db": "ok" if db_ok else "down", "layer": "ok" if layer_ok else "down"}
    response = JsonResponse(body, status=200 if db_ok and layer_ok else 503)
    response["Cache-Control"] = "no-store"
    return response


def _registry():
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text for staff sessions or ``Authorization: Bearer <METRICS_TOKEN>``."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    bearer_ok = bool(token) and header.startswith("Bearer ") and \
        hmac.compare_digest(header[7:].encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape"))
    if not bearer_ok and not (request.user.is_authenticated and request.user.is_staff):
        return JsonResponse({"detail": "Not found."}, status=404)
    metrics.refresh_process_gauges()
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
