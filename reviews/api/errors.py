"""Errors as JSON, the same shape everywhere."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import Http404
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..services import ServiceError

logger = logging.getLogger(__name__)

NOT_FOUND = {"detail": "Not found."}

SERVICE_STATUS = {
    "conflict": status.HTTP_409_CONFLICT,
    "not_open": status.HTTP_409_CONFLICT,
    "last_maintainer": status.HTTP_409_CONFLICT,
    "invalid": status.HTTP_400_BAD_REQUEST,
}


def exception_handler(exc, context):
    if isinstance(exc, (Http404, NotFound)):
        # One body for "missing" and "not yours": no existence leak.
        return Response(NOT_FOUND, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ServiceError):
        code = SERVICE_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
        if exc.field and code == status.HTTP_400_BAD_REQUEST:
            return Response({exc.field: [exc.message]}, status=code)
        return Response({"detail": exc.message, "code": exc.code}, status=code)
    if isinstance(exc, DatabaseError):
        logger.warning("database error answered 503", exc_info=True)
        return Response({"detail": "Service temporarily unavailable."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "2"})
    return drf_exception_handler(exc, context)
