"""The load client: many event streams in one process, on raw sockets and epoll.

Started by ``bench/run.py`` (one or more processes, pinned away from the
server).  It must cost far less per delivery than the server, so it does no
HTTP or SSE library work on the hot path: one ``recv`` per readable socket, one
``rfind`` for the last complete frame, one regex ``findall`` for the ``id:``
lines (which also works across the HTTP/1.1 chunk framing: a frame always
starts after a newline), and one array store per event.  The send timestamp
carried in the comment body is parsed once per event per process, not per
stream.

Protocol: the spec is a JSON file named on the command line; commands arrive
as JSON lines on stdin, answers and notices leave as JSON lines on stdout.

    {"cmd": "open"}                    open every stream (bounded concurrency)
    {"cmd": "status"}                  -> {"event": "status", ...}
    {"cmd": "stall"} / {"cmd": "resume"}   slow streams stop / start reading
    {"cmd": "finish", "out": PATH}     write the results (.npz) and exit

A stream behaves like a browser's EventSource: when the connection fails or
the response ends it waits the server's ``retry:`` and reconnects with
``Last-Event-ID``; a refused connection is retried at the same pace.
"""

from __future__ import annotations

import array
import errno
import heapq
import json
import os
import random
import re
import select
import socket
import sys
import time

ID_RE = re.compile(rb"\nid: (\d+)\n")
MARK_RE = re.compile(rb"@T(\d+\.\d+)@")
RETRY_RE = re.compile(rb"(?:^|\n)retry: (\d+)\n")
END_OF_RESPONSE = b"\r\n0\r\n\r\n"
# Below glibc's mmap threshold (128 KiB): a larger recv buffer is mmapped and
# unmapped on every call, which made the kernel 70% of this client's CPU.
RECV_BYTES = 65536

IDLE, CONNECTING, HEADERS, STREAMING = range(4)

DUMP = os.environ.get("BENCH_DUMP_RAW", "")  # debugging: raw bytes of the slow streams
EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT


class Stream:
    __slots__ = (
        "index", "host", "port", "doc", "doc_index", "token", "slow", "sock", "fd", "state", "buf",
        "recv", "base", "max_seen", "frames", "dups", "ooo", "resets", "rejects", "errors",
        "retry_ms", "stalled", "request_head", "attempt_at", "connects", "opened", "closed_at",
        "first_open", "bytes",
    )

    def __init__(self, index: int, spec: dict, expected: int) -> None:
        self.index = index
        self.host = spec["host"]
        self.port = spec["port"]
        self.doc = spec["doc"]
        self.doc_index = spec["doc_index"]
        self.token = spec["token"]
        self.slow = bool(spec.get("slow"))
        self.sock: socket.socket | None = None
        self.fd = -1
        self.state = IDLE
        self.buf = b""
        # recv[i]: when event base+i was first read (0.0: not yet).
        self.base = spec["after"] + 1
        self.recv = array.array("d", bytes(8 * max(16, expected)))
        self.max_seen = spec["after"]
        self.frames = 0
        self.dups = 0
        self.ooo = 0
        self.resets = 0
        self.rejects: list[int] = []
        self.errors = 0
        self.retry_ms = 1000
        self.stalled = False
        self.request_head = (
            f"GET /api/events?docPath={spec['doc']} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            f"Authorization: Token {self.token}\r\n"
            "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
        ).encode()
        self.attempt_at = 0.0
        self.connects: list[tuple[float, float]] = []  # (attempt started, 200 received)
        self.opened = 0
        self.closed_at: list[float] = []
        self.first_open = 0.0
        self.bytes = 0


class Client:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.expected = int(spec.get("expected_events", 4096))
        self.rcvbuf_slow = int(spec.get("slow_rcvbuf", 4096))
        self.concurrency = int(spec.get("connect_concurrency", 64))
        self.streams = [Stream(i, s, self.expected) for i, s in enumerate(spec["streams"])]
        self.by_fd: dict[int, Stream] = {}
        self.ep = select.epoll()
        self.timers: list[tuple[float, int, int]] = []  # (when, seq, stream index)
        self.timer_seq = 0
        self.pending_open: list[Stream] = []
        self.in_handshake = 0
        self.opening = False
        self.opened_reported = False
        # Send times by document and sequence number, from the marker in the body.
        self.sent: list[dict[int, float]] = [dict() for _ in range(int(spec.get("docs", 1)))]
        self.finishing = False
        self.stdin_buf = b""

    # -- output ----------------------------------------------------------------

    @staticmethod
    def emit(**message) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    # -- connections -------------------------------------------------------------

    def connect(self, st: Stream) -> None:
        st.attempt_at = time.time()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if st.slow:
            # A small receive window, so a stalled reader backs up into the
            # server's buffer instead of this kernel's.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf_slow)
        err = sock.connect_ex((st.host, st.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            st.errors += 1
            self.schedule(st, st.retry_ms / 1000)
            return
        st.sock = sock
        st.fd = sock.fileno()
        st.state = CONNECTING
        st.buf = b""
        self.by_fd[st.fd] = st
        self.in_handshake += 1
        self.ep.register(st.fd, EPOLLOUT)

    def drop(self, st: Stream, *, retry: bool = True, delay: float | None = None) -> None:
        """Close the socket; like EventSource, come back after ``retry`` ms."""
        if st.state in (CONNECTING, HEADERS):
            self.in_handshake -= 1
        self._close_socket(st)
        if st.state == STREAMING:
            st.closed_at.append(time.time())
        st.state = IDLE
        st.buf = b""
        if retry and not self.finishing:
            self.schedule(st, st.retry_ms / 1000 if delay is None else delay)
        self.pump_open()

    def schedule(self, st: Stream, delay: float) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (time.monotonic() + delay, self.timer_seq, st.index))

    def pump_open(self) -> None:
        """Start pending first connections, at most ``concurrency`` handshakes at once."""
        while self.pending_open and self.in_handshake < self.concurrency:
            self.connect(self.pending_open.pop())
        if self.opening and not self.opened_reported and not self.pending_open and \
                all(st.opened for st in self.streams):
            self.opened_reported = True
            self.emit(event="opened", n=len(self.streams), t=time.time())

    def on_writable(self, st: Stream) -> None:
        err = st.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            st.errors += 1
            self.drop(st)
            return
        last = st.max_seen
        head = st.request_head + (f"Last-Event-ID: {last}\r\n" if last > 0 else "").encode() + b"\r\n"
        try:
            st.sock.send(head)  # a few hundred bytes: always fits a fresh socket's buffer
        except OSError:
            st.errors += 1
            self.drop(st)
            return
        st.state = HEADERS
        self.ep.modify(st.fd, EPOLLIN)

    def on_headers(self, st: Stream, data: bytes) -> None:
        buf = st.buf + data
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            st.buf = buf
            return
        status_line = buf[: buf.find(b"\r\n")]
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.in_handshake -= 1
        if status != 200:
            st.rejects.append(status)
            retry_after = re.search(rb"(?i)\r\nretry-after: *(\d+)", buf[:end])
            self.close_quietly(st)  # already counted out of the handshake
            self.schedule(st, float(retry_after.group(1)) if retry_after else st.retry_ms / 1000)
            self.pump_open()
            return
        now = time.time()
        st.state = STREAMING
        st.connects.append((st.attempt_at, now))
        if not st.opened:
            st.first_open = now
        st.opened += 1
        body = buf[end + 4:]
        st.buf = b""
        match = RETRY_RE.search(body)
        if match:
            st.retry_ms = int(match.group(1))
        self.pump_open()
        if body:
            self.on_body(st, body, now)
        if st.stalled and st.state == STREAMING:
            self.ep.unregister(st.fd)

    def _close_socket(self, st: Stream) -> None:
        if st.sock is not None:
            try:
                self.ep.unregister(st.fd)
            except (OSError, ValueError):
                pass
            self.by_fd.pop(st.fd, None)
            st.sock.close()
            st.sock = None
            st.fd = -1

    def close_quietly(self, st: Stream) -> None:
        self._close_socket(st)
        st.state = IDLE
        st.buf = b""

    # -- the hot path ------------------------------------------------------------

    def on_body(self, st: Stream, data: bytes, now: float) -> None:
        if st.buf:
            data = st.buf + data
        end = data.rfind(b"\n\n")
        if end < 0:
            st.buf = data
            return
        ended = data.endswith(END_OF_RESPONSE)
        # Keep the second newline of the last "\n\n" with the tail: a frame
        # that follows in the same chunk starts right after it, and its
        # "\nid: " must still match when the rest of it arrives.
        st.buf = data[end + 1:]
        ids = ID_RE.findall(data, 0, end + 1)
        if ids:
            arr = st.recv
            base = st.base
            sent = self.sent[st.doc_index]
            for raw in ids:
                seq = int(raw)
                i = seq - base
                if i < 0:
                    continue
                if i >= len(arr):
                    arr.extend(array.array("d", bytes(8 * max(i + 1 - len(arr), len(arr)))))
                if arr[i]:
                    st.dups += 1
                    continue
                arr[i] = now
                if seq < st.max_seen:
                    st.ooo += 1
                else:
                    st.max_seen = seq
                if seq not in sent:
                    pos = data.find(b"id: %d\n" % seq)
                    match = MARK_RE.search(data, pos)
                    if match:
                        sent[seq] = float(match.group(1))
            st.frames += len(ids)
        if b"event: stream.reset" in data:
            st.resets += 1
        if ended:
            # The server ended the response (slow reader, shutdown, lifetime):
            # reconnect like EventSource does.
            self.drop(st)

    def on_readable(self, st: Stream) -> None:
        try:
            data = st.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        except OSError:
            st.errors += 1
            self.drop(st)
            return
        if not data:
            self.drop(st)
            return
        if DUMP and st.slow:
            with open(f"{DUMP}/raw-{st.index}.bin", "ab") as fh:
                fh.write(data)
        st.bytes += len(data)
        if st.state == STREAMING:
            self.on_body(st, data, time.time())
        else:
            self.on_headers(st, data)

    # -- commands ------------------------------------------------------------------

    def on_command(self, command: dict) -> None:
        cmd = command.get("cmd")
        if cmd == "open":
            self.opening = True
            self.concurrency = int(command.get("concurrency", self.concurrency))
            self.pending_open = list(reversed(self.streams))
            self.pump_open()
        elif cmd == "status":
            self.emit(event="status", **self.status())
        elif cmd == "stall":
            for st in self.streams:
                if st.slow:
                    st.stalled = True
                    if st.state == STREAMING:
                        # Not even EPOLLHUP: a stalled reader notices nothing.
                        self.ep.unregister(st.fd)
            self.emit(event="stalled", t=time.time())
        elif cmd == "resume":
            for st in self.streams:
                if st.slow and st.stalled:
                    st.stalled = False
                    if st.state == STREAMING:
                        self.ep.register(st.fd, EPOLLIN)
            self.emit(event="resumed", t=time.time())
        elif cmd == "finish":
            self.finishing = True
            self.finish(command["out"])

    def status(self) -> dict:
        per_doc: dict[int, int] = {}
        streaming = 0
        frames = 0
        connects = 0
        for st in self.streams:
            if st.state == STREAMING:
                streaming += 1
            frames += st.frames
            connects += st.opened
            low = per_doc.get(st.doc_index)
            per_doc[st.doc_index] = st.max_seen if low is None else min(low, st.max_seen)
        slow_ports = [[st.port, st.sock.getsockname()[1]] for st in self.streams
                      if st.slow and st.sock is not None and st.state == STREAMING]
        return {"streaming": streaming, "frames": frames, "connects": connects, "slow_ports": slow_ports,
                "min_last": {str(k): v for k, v in per_doc.items()},
                "t": time.time()}

    def finish(self, out: str) -> None:
        import numpy as np

        n = len(self.streams)
        width = max(len(st.recv) for st in self.streams) if n else 0
        recv = np.zeros((n, width), dtype=np.float64)
        for st in self.streams:
            recv[st.index, : len(st.recv)] = np.frombuffer(st.recv, dtype=np.float64)
        meta = [
            {
                "doc_index": st.doc_index, "base": st.base, "slow": st.slow, "frames": st.frames,
                "dups": st.dups, "ooo": st.ooo, "resets": st.resets, "rejects": st.rejects,
                "errors": st.errors, "connects": st.connects, "closed_at": st.closed_at,
                "last": st.max_seen, "port": st.port, "bytes": st.bytes,
                "state": ("idle", "connecting", "headers", "streaming")[st.state], "stalled": st.stalled,
            }
            for st in self.streams
        ]
        sent = {str(doc): sorted(times.items()) for doc, times in enumerate(self.sent)}
        np.savez(out, recv=recv)
        with open(out + ".json", "w") as fh:
            json.dump({"streams": meta, "sent": sent}, fh)
        for st in self.streams:
            if st.sock is not None:
                st.sock.close()
        self.emit(event="finished", out=out)

    # -- the loop --------------------------------------------------------------------

    def read_stdin(self) -> bool:
        chunk = os.read(0, 65536)
        if not chunk:
            return False
        self.stdin_buf += chunk
        while b"\n" in self.stdin_buf:
            line, self.stdin_buf = self.stdin_buf.split(b"\n", 1)
            if line.strip():
                self.on_command(json.loads(line))
        return True

    def run(self) -> None:
        self.ep.register(0, EPOLLIN)
        by_fd = self.by_fd
        poll = self.ep.poll
        on_body = self.on_body
        clock = time.time
        while not self.finishing:
            timeout = 0.1
            if self.timers:
                timeout = max(0.0, min(timeout, self.timers[0][0] - time.monotonic()))
            for fd, events in poll(timeout, 4096):
                if fd == 0:
                    if not self.read_stdin():
                        return  # the parent is gone
                    if self.finishing:
                        return
                    continue
                st = by_fd.get(fd)
                if st is None:
                    continue
                if st.state == STREAMING and not DUMP:
                    # The hot path, inlined: one recv, then the frames.
                    try:
                        data = st.sock.recv(RECV_BYTES)
                    except BlockingIOError:
                        continue
                    except OSError:
                        st.errors += 1
                        self.drop(st)
                        continue
                    if data:
                        st.bytes += len(data)
                        on_body(st, data, clock())
                    else:
                        self.drop(st)
                elif st.state == CONNECTING:
                    self.on_writable(st)
                else:
                    self.on_readable(st)
            now = time.monotonic()
            while self.timers and self.timers[0][0] <= now:
                _, _, index = heapq.heappop(self.timers)
                st = self.streams[index]
                if st.state == IDLE and not self.finishing:
                    self.connect(st)


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    random.seed(spec.get("seed", 0))
    Client(spec).run()


if __name__ == "__main__":
    main()
