"""Django under ASGI with the request/response work in one thread hop.

Django's own ASGIHandler runs the middleware chain in async mode.  Its
classic middleware (sessions, CSRF, auth, messages, security, ...) then runs
each ``process_request``/``process_response`` through ``sync_to_async``: about
twenty thread hops per request, measured at more CPU than the write itself.
Every view here but ``/healthz`` is synchronous, so this handler builds the
chain in sync mode and runs it, view included, in one hop to the sync thread.
The event stream does not come through here at all (see ``docreview.asgi``).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
