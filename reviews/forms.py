"""Form fields shared by the pages and the admin."""

from __future__ import annotations

from django import forms

from .models import CONTENT_MAX


class ContentField(forms.CharField):
    """A document's Markdown from a browser's textarea: kept as typed, but with
    the CRLF line breaks every browser submits turned back into LF.  Unchanged
    text then compares equal to what is stored, and saving a form changes no
    character the user did not."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        kwargs.setdefault("max_length", CONTENT_MAX)
        kwargs.setdefault("widget", forms.Textarea)
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n") if value else value
