"""Request body limit for the API: over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413."""

from __future__ import annotations

import io

from django.conf import settings
from django.http import JsonResponse


class RequestBodyLimitMiddleware:
    """Answer 413 before any view reads a body over the limit.

    Django checks the limit only when ``request.body`` is read; DRF's parsers
    read the stream instead, so without this a 50 MB JSON body would be parsed.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            length = request.META.get("CONTENT_LENGTH")
            too_big = False
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
        return self.get_response(request)
