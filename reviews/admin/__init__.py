"""The moderation console.

Every change made here goes through ``reviews.services``, so it emits its
events and keeps the domain's rules; nothing uses ``queryset.update()`` or a
bare ``save()``.  Moderation actions (hide, unhide, mark reviewed, delete)
ask for a reason on an intermediate page, are logged, and are offered only to
moderators: staff holding ``reviews.moderate_content``.  Objects with no
admin workflow of their own (suggestions, discussions, the logs) are
read-only here.
"""

from . import documents, moderation  # noqa: F401  (register the admins)
