"""Django under ASGI with a request's whole sync work in one thread hop.

Django's own ASGIHandler runs the middleware chain in async mode; its classic
middleware (sessions, CSRF, auth, messages, security, ...) then runs each
``process_request``/``process_response`` through ``sync_to_async``: about
twenty thread hops per request.  It also opens a ``ThreadSensitiveContext``
per request, which starts a new thread for every request, and with it a new
database connection.  Measured here, that overhead cost more CPU than the
write itself.

Every view here but ``/healthz`` is synchronous, so this handler builds the
chain in sync mode and runs ``request_started``, the chain, the view and (for
a response held in memory) ``close()``/``request_finished`` in one hop, on
asgiref's single thread for thread-sensitive code.  Requests of a process
therefore run their sync work one after another on one long-lived thread,
as under a single-threaded WSGI server, and that thread may keep a
persistent database connection (``CONN_MAX_AGE``; see ``realtime.checks``).
The event stream does not come through here at all (see ``docreview.asgi``).

A streamed response (a static file) is sent from the event loop and closed
afterwards, as Django does.  A client that disconnects while its request
runs is noticed when the response is sent, as with any sync view: Django
cannot interrupt a sync view either.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse
from django.urls import set_script_prefix


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # Built once: asgiref's wrapper inspects and wraps the function when made.
        self._respond_in_thread = sync_to_async(self._respond, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await self._respond_in_thread(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope, body_file):
        """``request_started``, the middleware chain and the view; then, unless
        the response streams, ``close()`` (which sends ``request_finished``)."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()
        return response
