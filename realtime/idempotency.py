"""``Idempotency-Key`` for DRF views: a retried write answers what the first did.

The key is claimed inside the transaction that performs the write.  A retry
running in parallel blocks on the key's unique index until the first attempt
commits (then replays its response) or rolls back (then runs itself).  A
response of 5xx or 429 is not kept: nothing was written, the client may retry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework.exceptions import APIException

from .models import IdempotencyKey

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_KEY = 255


def _canonical_body(request) -> bytes:
    """The body, with a JSON one in one canonical form: a retry that encodes
    the same JSON differently (key order, spacing) is the same request."""
    body = request.body
    if request.content_type == "application/json" and body:
        try:
            return json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()
        except (ValueError, RecursionError):
            pass
    return body


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path(), _canonical_body(request)):
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _replay(record: IdempotencyKey) -> HttpResponse:
    response = HttpResponse(record.body, status=record.status_code)
    if record.content_type:
        response["Content-Type"] = record.content_type
    else:  # the first answer had no body (204), so no type: nor does its replay
        del response["Content-Type"]
    response["Idempotent-Replayed"] = "true"
    return response


def _claim(user_id: int, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    horizon = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_TTL_HOURS)
    IdempotencyKey.objects.filter(user_id=user_id, key=key, created_at__lt=horizon).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(user_id=user_id, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        return IdempotencyKey.objects.get(user_id=user_id, key=key), False


class IdempotentWritesMixin:
    """Mix into a DRF view: unsafe requests with ``Idempotency-Key`` run at most once."""

    def dispatch(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None or request.method not in UNSAFE:
            return super().dispatch(request, *args, **kwargs)
        # Read the body first: with session auth, DRF's CSRF check (run by
        # ``.user`` below) parses request.POST, which would consume the stream.
        fingerprint = _fingerprint(request)
        drf_request = self.initialize_request(request, *args, **kwargs)
        try:
            user = drf_request.user
        except APIException as exc:
            # Answer the authentication or CSRF error as ``dispatch`` would.
            # Not by dispatching again: the failed check has already set the
            # request's user to anonymous, so a second run would answer 401
            # where the first answered 403.
            self.args, self.kwargs, self.request = args, kwargs, drf_request
            self.headers = self.default_response_headers
            return self.finalize_response(drf_request, self.handle_exception(exc), *args, **kwargs)
        if not user.is_authenticated:
            return super().dispatch(request, *args, **kwargs)
        if not key or len(key) > MAX_KEY or not key.isprintable():
            return JsonResponse({"Idempotency-Key": [f"Give 1 to {MAX_KEY} printable characters."]}, status=400)
        with transaction.atomic():
            record, created = _claim(user.pk, key, fingerprint)
            if not created:
                if record.fingerprint != fingerprint:
                    return JsonResponse({"detail": "This Idempotency-Key was used for another request."},
                                        status=422)
                return _replay(record)
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
            if response.status_code >= 500 or response.status_code == 429:
                transaction.set_rollback(True)
            else:
                record.status_code = response.status_code
                record.content_type = response.get("Content-Type", "")
                record.body = response.content.decode("utf-8")
                record.save(update_fields=["status_code", "content_type", "body"])
        return response
