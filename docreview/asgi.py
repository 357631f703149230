"""The one ASGI entry point, for daphne, uvicorn or any other server.

``/api/events`` goes to the event-stream application; everything else to
Django.  Lifespan messages (uvicorn sends them) close open streams on shutdown
so their clients reconnect at once.
"""

import asyncio
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docreview.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

if settings.SWITCH_INTERVAL_MS:
    # The event loop's thread (the fan-out) and the thread running requests'
    # sync work share the GIL: a shorter switch interval lets a request
    # resume sooner after each query instead of waiting out the loop's turn.
    sys.setswitchinterval(settings.SWITCH_INTERVAL_MS / 1000)

from docreview.handler import OneHopASGIHandler  # noqa: E402

django_application = OneHopASGIHandler()

from realtime.lifecycle import install_graceful_shutdown, lifespan, track_requests  # noqa: E402
from realtime.publish import bind_server_loop  # noqa: E402
from realtime.stream import EventStreamApp  # noqa: E402

event_stream = EventStreamApp()
requests = track_requests(django_application)
EVENT_PATHS = {"/api/events", "/api/events/"}


async def application(scope, receive, send):
    bind_server_loop(asyncio.get_running_loop())
    if scope["type"] == "http" and scope["path"] in EVENT_PATHS:
        install_graceful_shutdown()
        return await event_stream(scope, receive, send)
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    return await requests(scope, receive, send)
