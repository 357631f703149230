"""Which browser origins may open an event stream."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import validate_host


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """True for requests without ``Origin`` (non-browser clients), for the
    stream's own origin, and for ``CSRF_TRUSTED_ORIGINS``.  Anything else is a
    cross-site page using the visitor's cookies, and is refused."""
    origin = _header(scope, b"origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    host = _header(scope, b"host") or ""
    if not parts.netloc or parts.netloc != host:
        return False
    # Same host as the request: the Host itself must be one we serve.
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return validate_host(hostname, allowed)
