"""DRF's token authentication with its lookup compiled once (``docreview.prepared``).

The same rules and answers as ``rest_framework.authentication.TokenAuthentication``
(an unknown token and an inactive user are refused with 401); only the query
is not compiled again on every request.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from .prepared import PreparedQuery

_TOKEN = PreparedQuery(lambda key: Token.objects.select_related("user").filter(key=key), "\0token-key\0")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        if self.get_model() is not Token:
            return super().authenticate_credentials(key)
        token = _TOKEN.first(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
