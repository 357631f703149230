"""An event-stream client for tests, built on httpx-sse, reading in a thread."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse

from .waiting import wait_for


@dataclass
class Received:
    event: str
    data: str
    id: int | None

    def json(self) -> Any:
        return json.loads(self.data)


EPHEMERAL = {"user.presence", "user.typing", "user.cursor"}


class EventStream:
    """Opens ``/api/events`` and collects what arrives until closed."""

    def __init__(self, base_url: str, doc_path: str, *, token: str | None = None, last_event_id: int | str | None = None,
                 headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> None:
        self.url = base_url + "/api/events"
        self.params = {"docPath": doc_path, **(params or {})}
        self.headers = dict(headers or {})
        if token:
            self.headers["Authorization"] = f"Token {token}"
        if last_event_id is not None:
            self.headers["Last-Event-ID"] = str(last_event_id)
        self.received: list[Received] = []
        self.status: int | None = None
        self.error_body: str | None = None
        self.response_headers: httpx.Headers | None = None
        self.ended = threading.Event()
        self.connected = threading.Event()
        self.failure: BaseException | None = None
        self._response: httpx.Response | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, read=60.0)) as client:
                with connect_sse(client, "GET", self.url, params=self.params, headers=self.headers) as source:
                    self._response = source.response
                    self.status = source.response.status_code
                    self.response_headers = source.response.headers
                    if self.status != 200:
                        self.error_body = source.response.read().decode()
                        return
                    self.connected.set()
                    for sse in source.iter_sse():
                        if sse.event == "message" and not sse.data:
                            continue  # the retry: line
                        persisted = sse.event not in EPHEMERAL and sse.event != "stream.reset"
                        self.received.append(Received(sse.event, sse.data, int(sse.id) if persisted and sse.id else None))
        except BaseException as exc:  # noqa: BLE001 - reported through .failure
            if not self._closing:
                self.failure = exc
        finally:
            self.connected.set()
            self.ended.set()

    # -- reading ---------------------------------------------------------------

    def events(self, *, persisted_only: bool = True) -> list[Received]:
        return [r for r in list(self.received) if r.id is not None or not persisted_only]

    def ids(self) -> list[int]:
        return [r.id for r in self.events()]

    def of_type(self, event: str) -> list[Received]:
        return [r for r in list(self.received) if r.event == event]

    def wait_connected(self, timeout: float = 10.0) -> "EventStream":
        assert self.connected.wait(timeout), "stream did not connect"
        return self

    def wait_for_id(self, seq: int, timeout: float = 10.0) -> list[int]:
        return wait_for(lambda: seq in self.ids() and self.ids(), timeout=timeout,
                        message=f"event id {seq} (have {self.ids()[-5:]})")

    def wait_for_event(self, event: str, timeout: float = 10.0, predicate=None) -> Received:
        def found():
            for r in self.of_type(event):
                if predicate is None or predicate(r):
                    return r
            return None

        return wait_for(found, timeout=timeout, message=f"a {event} event")

    def close(self) -> None:
        self._closing = True
        response = self._response
        if response is not None:
            # Shut the socket down: that wakes the reading thread at once, as
            # a browser tab closing would end the connection.
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "stream reader did not stop"


class ResumingStream:
    """A client that does what a browser's EventSource does, across servers:
    when its stream ends or is refused, it reconnects (to the next base URL)
    with the last id it saw.  ``ids()`` spans every connection."""

    def __init__(self, base_urls: list[str], doc_path: str, *, token: str, retry: float = 0.2) -> None:
        self.base_urls = base_urls
        self.doc_path = doc_path
        self.token = token
        self.retry = retry
        self.connections: list[EventStream] = []
        self.last_id: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            url = self.base_urls[attempt % len(self.base_urls)]
            attempt += 1
            stream = EventStream(url, self.doc_path, token=self.token, last_event_id=self.last_id)
            self.connections.append(stream)
            while not stream.ended.wait(0.05):
                if stream.ids():
                    self.last_id = stream.ids()[-1]
                if self._stop.is_set():
                    stream.close()
                    return
            if stream.ids():
                self.last_id = stream.ids()[-1]
            self._stop.wait(self.retry)

    def ids(self) -> list[int]:
        return [i for stream in list(self.connections) for i in stream.ids()]

    def wait_for_id(self, seq: int, timeout: float = 15.0) -> list[int]:
        return wait_for(lambda: seq in self.ids() and self.ids(), timeout=timeout,
                        message=f"event id {seq} across reconnects (have {self.ids()[-5:]})")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for stream in self.connections:
            if not stream.ended.is_set():
                stream.close()
