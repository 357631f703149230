"""The writer: ``POST /api/comments/`` at a steady rate through the real write path.

Started by ``bench/run.py`` with a JSON spec.  Open loop: POST ``i`` is due at
``start + i / rate`` whatever happened to the ones before it (a slow server
does not slow the offered load down), from writer ``i % W`` to document
``i % D`` and server ``i % K``, with at most ``max_in_flight`` requests
outstanding; once ``duration`` (plus a 2 s grace) has passed, whatever is left
is not sent but counted as unsent.  Each body carries ``@T<time.time()>@``, the moment the request
was handed to the socket, from which every stream computes its latency.

Writes the record of every POST to ``out`` and prints ``{"event": "done"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def publish(spec: dict) -> dict:
    targets = spec["targets"]
    writers = spec["writers"]
    docs = spec["docs"]
    rate = float(spec["rate"])
    count = int(round(rate * float(spec["duration"])))
    pad = "x" * max(0, int(spec.get("body_bytes", 200)) - 40)
    timeout = float(spec.get("timeout", 10.0))
    limits = httpx.Limits(max_connections=int(spec.get("max_in_flight", 256)), max_keepalive_connections=64)
    clients = [httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) for url in targets]
    slots = asyncio.Semaphore(int(spec.get("max_in_flight", 256)))
    records: list[list] = [None] * count  # type: ignore[list-item]

    async def one(i: int, scheduled: float) -> None:
        doc = i % len(docs)
        target = i % len(targets)
        writer = writers[i % len(writers)]
        sent = time.time()
        body = {"docPath": docs[doc], "body": f"bench {i} @T{sent:.6f}@ {pad}"}
        status = 0
        error = ""
        try:
            response = await clients[target].post(
                "/api/comments/", json=body, headers={"Authorization": f"Token {writer}"})
            status = response.status_code
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        finally:
            slots.release()
        records[i] = [i, doc, target, scheduled, sent, time.time(), status, error]

    start = float(spec.get("start_at") or time.time())
    tasks = []
    loop = asyncio.get_running_loop()
    deadline = start + float(spec["duration"]) + float(spec.get("grace", 2.0))
    unsent = 0
    for i in range(count):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            # Bounded in time: a server that cannot keep up gets no POSTs
            # after the deadline; they are reported as unsent.
            await asyncio.wait_for(slots.acquire(), timeout=max(0.001, deadline - time.time()))
        except asyncio.TimeoutError:
            unsent = count - i
            break
        tasks.append(loop.create_task(one(i, due)))
    if tasks:
        await asyncio.wait(tasks, timeout=timeout + 5)
    for client in clients:
        await client.aclose()
    return {"start": start, "rate": rate, "unsent": unsent, "records": [r for r in records if r is not None]}


def main() -> None:
    with open(sys.argv[1]) as fh:
        spec = json.load(fh)
    try:
        import uvloop

        result = uvloop.run(publish(spec))
    except ImportError:
        result = asyncio.run(publish(spec))
    with open(spec["out"], "w") as fh:
        json.dump(result, fh)
    sys.stdout.write(json.dumps({"event": "done", "posts": len(result["records"])}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
