"""Exports: W3C Web Annotation JSON-LD and a Markdown review summary."""

from __future__ import annotations

import json

import jsonschema
import pytest

from reviews import services
from tests.conftest import DOC_CONTENT

pytestmark = pytest.mark.django_db

# The parts of the W3C Web Annotation Data Model an importer relies on
# (https://www.w3.org/TR/annotation-model/), as a schema.
SELECTOR = {
    "oneOf": [
        {"type": "object", "required": ["type", "exact"],
         "properties": {"type": {"const": "TextQuoteSelector"}, "exact": {"type": "string", "minLength": 1},
                        "prefix": {"type": "string"}, "suffix": {"type": "string"}},
         "additionalProperties": False},
        {"type": "object", "required": ["type", "start", "end"],
         "properties": {"type": {"const": "TextPositionSelector"}, "start": {"type": "integer", "minimum": 0},
                        "end": {"type": "integer", "minimum": 0}},
         "additionalProperties": False},
    ]
}
ANNOTATION = {
    "type": "object",
    "required": ["id", "type", "motivation", "body", "target", "created", "creator"],
    "properties": {
        "id": {"type": "string", "pattern": "^http://testserver/api/comments/[0-9]+/$"},
        "type": {"const": "Annotation"},
        "motivation": {"enum": ["commenting", "replying"]},
        "created": {"type": "string", "format": "date-time"},
        "modified": {"type": "string", "format": "date-time"},
        "creator": {"type": "object", "required": ["type", "nickname"]},
        "body": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["type", "value"],
            "properties": {"type": {"const": "TextualBody"}, "value": {"type": "string"},
                           "purpose": {"enum": ["commenting", "tagging"]}}}},
        "target": {"oneOf": [
            {"type": "string", "format": "uri"},
            {"type": "object", "required": ["source", "selector"],
             "properties": {"source": {"type": "string"},
                            "selector": {"type": "array", "minItems": 1, "items": SELECTOR}}},
        ]},
    },
}
COLLECTION = {
    "type": "object",
    "required": ["@context", "id", "type", "total", "first"],
    "properties": {
        "@context": {"const": "http://www.w3.org/ns/anno.jsonld"},
        "type": {"const": "AnnotationCollection"},
        "total": {"type": "integer"},
        "first": {"type": "object", "required": ["type", "items"],
                  "properties": {"type": {"const": "AnnotationPage"}, "items": {"type": "array", "items": ANNOTATION}}},
    },
}


def span(quote: str) -> dict:
    start = DOC_CONTENT.index(quote)
    return {"quote": quote, "start": start, "end": start + len(quote)}


@pytest.fixture
def review(document, reviewer, maintainer, moderator):
    on_python = services.comment_create(author=reviewer, document=document, body="Which *versions*?",
                                        anchor=span("Python"))
    reply = services.comment_create(author=maintainer, document=document, body="3.11 and up.", parent=on_python)
    general = services.comment_create(author=reviewer, document=document, body="Looks good <b>overall</b>.")
    services.comment_update(comment=general, resolved=True)
    doomed = services.comment_create(author=reviewer, document=document, body="Which database?",
                                     anchor=span("Configure the database."))
    hidden = services.comment_create(author=reviewer, document=document, body="secret spam")
    services.comment_hide(comment=hidden, by=moderator, reason="spam")
    services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                               anchor=span("# Setup"), note="Shorter")
    services.document_update(document=document, content=DOC_CONTENT.replace("Configure the database.\n", ""))
    discussion = services.discussion_create(author=reviewer, document=document, title="Scope")
    services.discussion_message_create(author=reviewer, discussion=discussion, body="hi")
    return {"python": on_python, "reply": reply, "general": general, "orphan": doomed, "hidden": hidden}


def test_w3c_export_is_a_valid_annotation_collection(api, document, review, viewer):
    response = api(viewer).get(f"/api/documents/{document.pk}/export", {"format": "w3c"})
    assert response.status_code == 200
    assert response["Content-Type"] == 'application/ld+json; profile="http://www.w3.org/ns/anno.jsonld"'
    assert response["Content-Disposition"] == 'attachment; filename="guides_setup.md.annotations.jsonld"'
    data = json.loads(response.content)
    jsonschema.validate(data, COLLECTION, format_checker=jsonschema.FormatChecker())
    items = {item["id"].rstrip("/").rsplit("/", 1)[1]: item for item in data["first"]["items"]}
    assert data["total"] == len(items) == 4  # hidden comments are never exported
    assert str(review["hidden"].pk) not in items and "secret spam" not in response.content.decode()

    on_python = items[str(review["python"].pk)]
    assert on_python["motivation"] == "commenting" and on_python["creator"]["nickname"] == "rob"
    assert on_python["target"]["source"] == "http://testserver/docs/guides/setup.md"
    quote, position = on_python["target"]["selector"]
    assert quote["exact"] == "Python" and quote["prefix"].endswith("Install ") and quote["suffix"].startswith(",")
    assert DOC_CONTENT[position["start"]:position["end"]] == "Python"

    reply = items[str(review["reply"].pk)]
    assert reply["motivation"] == "replying" and reply["target"] == on_python["id"]

    general = items[str(review["general"].pk)]
    assert general["target"] == "http://testserver/docs/guides/setup.md"
    assert {"type": "TextualBody", "value": "resolved", "purpose": "tagging"} in general["body"]

    orphan = items[str(review["orphan"].pk)]
    assert [s["type"] for s in orphan["target"]["selector"]] == ["TextQuoteSelector"]
    assert orphan["target"]["selector"][0]["exact"] == "Configure the database."


def test_format_is_the_default_and_the_trailing_slash_optional(api, document, review, viewer):
    plain = api(viewer).get(f"/api/documents/{document.pk}/export")
    slash = api(viewer).get(f"/api/documents/{document.pk}/export/", {"format": "w3c"})
    assert plain.status_code == slash.status_code == 200
    assert json.loads(plain.content)["total"] == json.loads(slash.content)["total"] == 4


def test_markdown_summary(api, document, review, viewer):
    response = api(viewer).get(f"/api/documents/{document.pk}/export", {"format": "md"})
    assert response.status_code == 200 and response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="guides_setup.md.review.md"'
    text = response.content.decode()
    assert text.startswith("# Review of Setup\n")
    assert "`guides/setup.md`, version 2" in text
    assert "- Comments: 3 (2 open, 1 resolved), 1 reply; 1 orphaned" in text
    assert "- Suggestions: 1 open" in text and "- Discussions: 1" in text
    passages = text.index("## Comments on passages")
    orphans = text.index("## Orphaned comments")
    general = text.index("## General comments")
    assert passages < text.index("### Line 3: “Python”") < orphans
    assert orphans < text.index("### Was: “Configure the database.”") < text.index("Which database?") < general
    assert "  Which *versions*?" in text and "    3.11 and up." in text
    assert "&lt;b>overall&lt;/b>" in text and "<b>" not in text
    assert "“# Setup” → “Set up”" in text and "Shorter" in text
    assert "Scope · rob · 1 message" in text
    assert "secret spam" not in text


def test_export_errors(api, document, review, viewer, outsider):
    bad = api(viewer).get(f"/api/documents/{document.pk}/export", {"format": "pdf"})
    assert bad.status_code == 400 and "format" in bad.json()
    hidden_doc = api(outsider).get(f"/api/documents/{document.pk}/export", {"format": "md"})
    missing = api(outsider).get("/api/documents/999999/export", {"format": "md"})
    assert hidden_doc.status_code == missing.status_code == 404 and hidden_doc.json() == missing.json()
    assert api(None).get(f"/api/documents/{document.pk}/export").status_code == 401
