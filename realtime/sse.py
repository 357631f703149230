"""Server-Sent Events framing.

Every frame is built here, once per event and audience, and the same bytes are
written to every stream that shares them.  Field values are stripped of CR, LF
and NUL so no value can start a new field or frame; ``data`` is JSON, which
escapes newlines inside strings, so it always stays on one line.
"""

from __future__ import annotations

import json
from typing import Any

_FIELD_STRIP = str.maketrans("", "", "\r\n\0")

PING = b": ping\n\n"


def clean_field(value: str) -> str:
    """Return ``value`` with the characters that would end an SSE field removed."""
    return value.translate(_FIELD_STRIP)


def dumps(payload: Any) -> str:
    """Compact JSON as the stream sends it (non-ASCII kept, control characters escaped)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def frame(*, event: str, data: str, id: int | None = None) -> bytes:
    """One SSE frame.  ``data`` must already be a one-line JSON text."""
    parts = []
    if id is not None:
        parts.append(f"id: {int(id)}\n")
    parts.append(f"event: {clean_field(event)}\n")
    # JSON never holds a raw newline, but strip anyway: a frame must not split.
    parts.append(f"data: {clean_field(data)}\n\n")
    return "".join(parts).encode("utf-8")


def retry(ms: int) -> bytes:
    return f"retry: {int(ms)}\n\n".encode("ascii")
