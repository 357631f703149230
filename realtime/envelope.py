"""The JSON every persisted event is sent as, live and in replay alike."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from . import sse


def iso_millis(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``, as the API's timestamps."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(*, key: str, seq: int, type: str, data: Any, at: datetime) -> dict[str, Any]:
    return {"type": type, "docPath": key, "data": data, "id": seq, "at": iso_millis(at)}


def encode(*, key: str, seq: int, type: str, data: Any, at: datetime) -> bytes:
    """The complete SSE frame of one persisted event."""
    return sse.frame(
        id=seq, event=type, data=sse.dumps(envelope(key=key, seq=seq, type=type, data=data, at=at))
    )
