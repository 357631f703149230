"""DRF's JSON parser, with one more way for a body to be malformed.

Python's ``json`` raises ``RecursionError``, not ``ValueError``, on arrays or
objects nested deeper than the interpreter's recursion limit (a 200 KB body
of ``[`` does it); DRF lets that through as a 500.  Here it is a parse error
(400) like any other malformed JSON.
"""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
