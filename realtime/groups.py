"""Channel-layer group names."""

from __future__ import annotations

import hashlib


def group_for(key: str) -> str:
    """The layer group of a stream key: a hash, so any key (any length, any
    character) gives a name within channels' rules (ASCII, under 100 chars)."""
    return "rt." + hashlib.sha256(key.encode("utf-8")).hexdigest()
