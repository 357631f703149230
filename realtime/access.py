"""The one question the stream asks the domain.

``settings.REALTIME_ACCESS_POLICY`` names a class implementing
:class:`StreamPolicy`.  The realtime app never imports the domain: it asks
"may this user read this key, and as which audience?" and "how does this
audience see these events now?", and the domain answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

@dataclass(frozen=True)
class EventView:
    """How one audience sees one persisted event."""

    seq: int
    type: str
    data: Any


class StreamPolicy(Protocol):
    def is_valid_key(self, key: str) -> bool:
        """Whether ``key`` is well formed (a malformed one answers 400)."""

    def audience_for(self, user: Any, key: str) -> str | None:
        """The audience ``user`` reads ``key`` as, or None when they may not read it.

        Runs in a worker thread and may query the database.  A key that does not
        exist and one the user may not read must both answer None.
        """

    def redact(self, audience: str, key: str, events: list[EventView]) -> list[EventView]:
        """The same events, in the same order and with the same ``seq``, as
        ``audience`` may see them *now* (used for replay and gap fills)."""


@lru_cache(maxsize=1)
def policy() -> StreamPolicy:
    return import_string(settings.REALTIME_ACCESS_POLICY)()
