"""Project middleware, sync- and async-capable.

Under ASGI, Django runs the middleware chain in async mode only as far as
every middleware allows: one sync-only middleware splits the chain into
thread hops (sync -> loop -> thread) on every request, which cost more than
the write itself.  Both classes here work in either mode, so the whole chain
runs on the loop and a request makes one hop, into the view's thread.
"""

from __future__ import annotations

import io

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
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
