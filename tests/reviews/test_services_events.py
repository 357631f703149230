"""Each service writes exactly the right event rows, in the same transaction."""

from __future__ import annotations

import pytest
from django.db import transaction

from realtime.models import Event, Stream
from reviews import representations as rep
from reviews import services
from reviews.models import Comment, SuggestionStatus

pytestmark = pytest.mark.django_db


def events_of(document):
    return list(Event.objects.filter(stream__key=document.path).order_by("seq").values_list("seq", "type", "data"))


def test_document_create_has_an_empty_sequence(document):
    assert events_of(document) == []
    assert document.stream.last_id == 0


def test_each_write_emits_its_event_with_sequence_numbers_one_to_n(document, reviewer, maintainer,
                                                                    django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        comment = services.comment_create(author=reviewer, document=document, body="First")
        reply = services.comment_create(author=maintainer, document=document, body="Reply", parent=comment)
        services.comment_update(comment=comment, resolved=True)
        start = document.content.index("make run")
        suggestion = services.suggestion_create(
            author=reviewer, document=document, replacement="`make run`",
            anchor={"quote": "make run", "start": start, "end": start + len("make run")},
        )
        discussion = services.discussion_create(author=reviewer, document=document, title="Scope")
        message = services.discussion_message_create(author=maintainer, discussion=discussion, body="Agreed")
        reply_id = reply.pk
        services.comment_delete(comment=reply)
    rows = events_of(document)
    assert [seq for seq, _, _ in rows] == list(range(1, 8))
    assert [t for _, t, _ in rows] == [
        "comment.created", "comment.created", "comment.updated", "suggestion.created",
        "discussion.created", "discussion.message", "comment.deleted",
    ]
    comment.refresh_from_db()
    assert rows[0][2]["id"] == comment.pk and rows[0][2]["body"] == "First"
    assert rows[2][2] == rep.comment_json(comment)
    assert rows[3][2] == rep.suggestion_json(suggestion)
    assert rows[5][2] == rep.message_json(message)
    assert rows[6][2] == {"id": reply_id}
    # One publish per event, after commit.
    assert len(callbacks) == 7
    assert Stream.objects.get(key=document.path).last_id == 7


def test_rolled_back_change_records_and_publishes_nothing(document, reviewer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                services.comment_create(author=reviewer, document=document, body="never")
                raise RuntimeError("abort")
    assert events_of(document) == []
    assert callbacks == []
    assert not Comment.objects.filter(body="never").exists()
    # The next event still gets id 1: no gap from the rolled-back one.
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_create(author=reviewer, document=document, body="kept")
    assert [seq for seq, _, _ in events_of(document)] == [1]


def test_approve_emits_suggestion_approved_then_document_updated(document, reviewer,
                                                                 django_capture_on_commit_callbacks):
    start = document.content.index("Python")
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Python 3.11",
                                            anchor={"quote": "Python", "start": start, "end": start + 6})
    result = services.suggestion_approve(suggestion=suggestion)
    assert result.applied
    document.refresh_from_db()
    assert "Install Python 3.11, then" in document.content
    assert document.version == 2
    types = [t for _, t, _ in events_of(document)]
    assert types == ["suggestion.created", "suggestion.approved", "document.updated"]
    approved = events_of(document)[1][2]
    assert approved["status"] == "approved"
    updated = events_of(document)[2][2]
    assert updated["content"] == document.content and updated["version"] == 2


def test_approve_when_quote_is_gone_marks_outdated_and_emits_update(document, reviewer):
    start = document.content.index("Python")
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Py",
                                            anchor={"quote": "Python", "start": start, "end": start + 6})
    services.document_update(document=document, content=document.content.replace("Python", "Ruby"))
    suggestion.refresh_from_db()
    result = services.suggestion_approve(suggestion=suggestion)
    assert not result.applied and result.reason == "outdated"
    suggestion.refresh_from_db()
    assert suggestion.status == SuggestionStatus.OUTDATED
    document.refresh_from_db()
    assert "Ruby" in document.content and document.version == 2
    assert [t for _, t, _ in events_of(document)][-1] == "suggestion.updated"


def test_a_suggestion_an_approval_overlaps_is_outdated_and_placed_through_the_edit_in_one_event(document, reviewer):
    def suggest(quote, replacement):
        start = document.content.index(quote)
        return services.suggestion_create(author=reviewer, document=document, replacement=replacement,
                                          anchor={"quote": quote, "start": start, "end": start + len(quote)})

    winner = suggest("Install Python", "Set up Ruby")
    loser = suggest("Python, then", "Python 3.12, then")
    before = len(events_of(document))
    assert services.suggestion_approve(suggestion=winner).applied
    document.refresh_from_db()
    loser.refresh_from_db()
    assert loser.status == SuggestionStatus.OUTDATED
    # Its text is gone: its anchor says so instead of claiming its old offsets.
    assert loser.anchor["state"] == "orphaned" and loser.anchor["quote"] == "Python, then"
    new = events_of(document)[before:]
    assert [t for _, t, _ in new] == ["suggestion.approved", "document.updated", "suggestion.updated"]
    assert new[-1][2]["status"] == "outdated" and new[-1][2]["anchor"]["state"] == "orphaned"


def test_approve_finds_the_quote_again_after_an_edit_above_it(document, reviewer):
    start = document.content.index("Configure")
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor={"quote": "Configure", "start": start, "end": start + 9})
    services.document_update(document=document, content="Intro line.\n" + document.content)
    suggestion.refresh_from_db()
    result = services.suggestion_approve(suggestion=suggestion)
    assert result.applied
    document.refresh_from_db()
    assert document.content.startswith("Intro line.\n# Setup") and "Set up the database." in document.content


def test_hidden_comment_is_published_as_a_deletion_for_readers(document, reviewer, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    from realtime import publish
    from reviews.stream_access import READER

    comment = services.comment_create(author=reviewer, document=document, body="spam")
    sent = []
    monkeypatch.setattr(publish, "broadcast", lambda key, message: sent.append((key, message)))
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_update(comment=comment, hidden=True)
    row = events_of(document)[-1]
    assert row[1] == "comment.updated" and row[2]["hidden"] is True
    [(key, message)] = sent
    assert key == document.path and message["seq"] == row[0]
    variant_type, variant_payload = message["variants"][READER]
    assert variant_type == "comment.deleted"
    assert '"data":{"id":%d}' % comment.pk in variant_payload
    assert "spam" not in variant_payload and "spam" in message["payload"]


def test_a_comment_is_anchored_on_the_content_as_it_is_when_it_is_written(document, reviewer):
    """The caller's document may be older than an edit committed since: the anchor is
    checked and placed against the current content, not the caller's copy."""
    from reviews.models import Document

    stale = Document.objects.get(pk=document.pk)
    services.document_update(document=document, content="NEW INTRO. " + document.content)
    placed = services.comment_create(author=reviewer, document=stale, body="which one?",
                                     anchor={"quote": "Configure the database"})
    current = Document.objects.get(pk=document.pk).content
    assert current[placed.anchor["start"]:placed.anchor["end"]] == "Configure the database"
    old_start = stale.content.index("Configure the database")
    with pytest.raises(services.ServiceError):
        services.comment_create(author=reviewer, document=stale, body="stale offsets",
                                anchor={"quote": "Configure the database", "start": old_start,
                                        "end": old_start + len("Configure the database")})
