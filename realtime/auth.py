"""Who is asking, for the event stream: a DRF token or the Django session.

The same rules as the rest of the API: an inactive user, an unknown token and a
session whose password hash no longer matches (password changed, logged out)
are all anonymous.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_of(headers: list[tuple[bytes, bytes]]) -> tuple[bool, str | None]:
    """(whether an Authorization header was sent, the DRF token in it or None)."""
    authorization = _header(headers, b"authorization")
    if not authorization:
        return False, None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "token" or not token.strip():
        return True, None
    return True, token.strip()


def authenticate(headers: list[tuple[bytes, bytes]]) -> Any:
    """The user of a request's headers, or ``AnonymousUser``. Queries the database."""
    sent, token = token_of(headers)
    if sent:
        if token is None:
            return AnonymousUser()
        from rest_framework.authtoken.models import Token

        found = Token.objects.select_related("user").filter(key=token).first()
        if found is None or not found.user.is_active:
            return AnonymousUser()
        return found.user

    cookie_header = _header(headers, b"cookie")
    if not cookie_header:
        return AnonymousUser()
    cookies = SimpleCookie()
    try:
        cookies.load(cookie_header)
    except Exception:  # noqa: BLE001 - a malformed cookie is simply no session
        return AnonymousUser()
    morsel = cookies.get(settings.SESSION_COOKIE_NAME)
    if morsel is None:
        return AnonymousUser()
    engine = import_module(settings.SESSION_ENGINE)
    request = HttpRequest()
    request.session = engine.SessionStore(morsel.value)
    # get_user() checks the session's password hash and the user's is_active.
    return get_user(request)
