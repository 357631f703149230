"""Project middleware, sync- and async-capable.

Under ASGI, Django runs the middleware chain in async mode only as far as
every middleware allows: one sync-only middleware splits the chain into
thread hops (sync -> loop -> thread) on every request, which cost more than
the write itself.  Every class here works in either mode, so the whole chain
runs on the loop and a request makes one hop, into the view's thread.
(``docreview.handler`` runs the chain in sync mode; the classes keep working
under Django's own ASGIHandler as well.)
"""

from __future__ import annotations

import io

import functools

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import JsonResponse
from whitenoise.middleware import WhiteNoiseMiddleware


class _BothModes:
    sync_capable = True
    async_capable = True

    def _mark(self, get_response) -> None:
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)


class RequestBodyLimitMiddleware(_BothModes):
    """Answer 413 before any view reads a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE``.

    Django checks the limit only when ``request.body`` is read; DRF's parsers
    read the stream instead, so without this a 50 MB JSON body would be parsed.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._mark(get_response)

    def _refuse(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return None
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                too_big = int(length) > limit
            except ValueError:
                return JsonResponse({"detail": "Invalid Content-Length."}, status=400)
        else:
            # No length given (chunked): read at most limit + 1 bytes.
            body = request.read(limit + 1)
            too_big = len(body) > limit
            request._body = body
            request._stream = io.BytesIO(body)
            request._read_started = False
        if too_big:
            return JsonResponse({"detail": f"Request body over {limit} bytes."}, status=413)
        return None

    def __call__(self, request):
        if self._is_async:
            return self.__acall__(request)
        return self._refuse(request) or self.get_response(request)

    async def __acall__(self, request):
        return self._refuse(request) or await self.get_response(request)


class StaticFilesMiddleware(_BothModes, WhiteNoiseMiddleware):
    """WhiteNoise, usable in an async chain: static files are served from a
    thread, every other request passes straight through on the loop."""

    def __init__(self, get_response=None):
        super().__init__(get_response)
        self._mark(get_response)

    def __call__(self, request):
        if self._is_async:
            return self.__acall__(request)
        return super().__call__(request)

    def _static_file(self, request):
        if self.autorefresh:
            return self.find_file(request.path_info)
        return self.files.get(request.path_info)

    async def __acall__(self, request):
        static_file = self._static_file(request)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)


# What a view or decorator can set on a response to change its policy.
_CSP_OWN = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
            "_csp_exempt", "_csp_exempt_ro")


@functools.cache
def _settings_policy(report_only: bool) -> tuple[str, tuple[str, ...]]:
    """The header the settings give (empty for none) and the path prefixes it skips."""
    config = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY" if report_only else "CONTENT_SECURITY_POLICY",
                     None) or {}
    return build_policy(report_only=report_only), tuple(config.get("EXCLUDE_URL_PREFIXES", None) or ())


@receiver(setting_changed)
def _forget_settings_policy(*, setting, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _settings_policy.cache_clear()


class CSPMiddleware(BaseCSPMiddleware):
    """django-csp's middleware, with the policy built once from the settings.

    django-csp builds both headers from the settings on every response
    (about 0.1 ms of CPU, a twentieth of a comment POST here).  A response
    whose policy nothing changed (no nonce used, no per-view config, update,
    replace or exemption) gets the same headers from the cached build; any
    other goes through django-csp unchanged.
    """

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(hasattr(response, name) for name in _CSP_OWN):
            return super().process_response(request, response)
        if response.status_code in (500, 404) and settings.DEBUG:
            return response  # django-csp leaves Django's debug pages alone
        for header, report_only in ((HEADER, False), (HEADER_REPORT_ONLY, True)):
            policy, excluded = _settings_policy(report_only)
            if policy and header not in response and not request.path_info.startswith(excluded):
                response[header] = policy
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
