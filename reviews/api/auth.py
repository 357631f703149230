"""``POST /api/auth/token/``: DRF's token view, hardened."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.authtoken.views import ObtainAuthToken

from docreview.parsers import JSONParser
from realtime.ratelimit import SignInRateThrottle


class ObtainToken(ObtainAuthToken):
    """DRF's view with the project's JSON parser (a body nested too deeply is
    a 400, not a 500) and a limit on password attempts per username."""

    parser_classes = (JSONParser, parsers.FormParser, parsers.MultiPartParser)
    throttle_classes = (SignInRateThrottle,)
