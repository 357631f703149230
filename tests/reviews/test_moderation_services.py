"""Moderation services: each action's events, its log entry, and what readers see."""

from __future__ import annotations

import json

import pytest
from django.db import transaction

from realtime import log as event_log
from realtime import publish
from realtime.models import Event
from reviews import services
from reviews.models import (
    Comment,
    CommentRevision,
    DiscussionMessage,
    Flag,
    FlagReason,
    ModerationAction,
    ModerationLogEntry,
)
from reviews.stream_access import MODERATOR, READER

pytestmark = pytest.mark.django_db


def rows(document, after: int = 0):
    return list(Event.objects.filter(stream__key=document.path, seq__gt=after).order_by("seq")
                .values_list("type", "data"))


def last_seq(document) -> int:
    return Event.objects.filter(stream__key=document.path).count()


@pytest.fixture
def sent(monkeypatch):
    """The channel-layer messages published after commit: (type, payload, variants)."""
    out: list[dict] = []
    monkeypatch.setattr(publish, "broadcast", lambda key, message: out.append(message))
    return out


def replay(document, audience: str) -> list[tuple[str, dict]]:
    """What a stream of ``audience`` receives when it replays the whole log."""
    frames = event_log.read_replay(document.path, after=0, limit=1000, audience=audience).frames
    out = []
    for _, frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.decode().strip().splitlines())
        envelope = json.loads(fields["data"])
        out.append((fields["event"], envelope["data"]))
    return out


# --- comments ----------------------------------------------------------------------------


def test_hide_emits_updated_for_moderators_deleted_for_readers_and_logs(
        document, reviewer, moderator, sent, django_capture_on_commit_callbacks):
    comment = services.comment_create(author=reviewer, document=document, body="buy pills")
    Flag.objects.create(comment=comment, user=document.created_by, reason=FlagReason.SPAM)
    before = last_seq(document)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.comment_hide(comment=comment, by=moderator, reason="spam link")
    assert len(callbacks) == 1
    [(kind, data)] = rows(document, before)
    assert kind == "comment.updated" and data["hidden"] is True and data["body"] == "buy pills"
    variant_type, variant_payload = sent[-1]["variants"][READER]
    assert variant_type == "comment.deleted"
    assert json.loads(variant_payload)["data"] == {"id": comment.pk}
    assert "buy pills" not in variant_payload
    [entry] = ModerationLogEntry.objects.all()
    assert (entry.actor, entry.action, entry.target_type, entry.target_id, entry.document_id, entry.reason) == (
        moderator, ModerationAction.HIDE, "comment", comment.pk, document.pk, "spam link")
    assert entry.old_state == {"hidden": False, "openFlags": 1}
    assert entry.new_state == {"hidden": True, "openFlags": 1}


def test_unhide_emits_updated_for_everyone_and_logs(document, reviewer, moderator, sent,
                                                    django_capture_on_commit_callbacks):
    comment = services.comment_create(author=reviewer, document=document, body="fine after all")
    services.comment_hide(comment=comment, by=moderator, reason="looked like spam")
    before = last_seq(document)
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_unhide(comment=comment, by=moderator, reason="appeal upheld")
    [(kind, data)] = rows(document, before)
    assert kind == "comment.updated" and data["hidden"] is False
    assert sent[-1]["variants"] == {}
    entry = ModerationLogEntry.objects.first()  # newest first
    assert entry.action == ModerationAction.UNHIDE and entry.reason == "appeal upheld"
    assert (entry.old_state["hidden"], entry.new_state["hidden"]) == (True, False)


def test_hiding_again_changes_and_logs_nothing(document, reviewer, moderator):
    comment = services.comment_create(author=reviewer, document=document, body="x")
    services.comment_hide(comment=comment, by=moderator, reason="r")
    before = last_seq(document)
    services.comment_hide(comment=comment, by=moderator, reason="r again")
    assert last_seq(document) == before and ModerationLogEntry.objects.count() == 1


def test_hiding_a_comment_takes_its_replies_away_from_readers_too(document, reviewer, maintainer, moderator,
                                                                   sent, django_capture_on_commit_callbacks):
    parent = services.comment_create(author=reviewer, document=document, body="troll")
    reply = services.comment_create(author=maintainer, document=document, body="please don't", parent=parent)
    before = last_seq(document)
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_hide(comment=parent, by=moderator, reason="abuse")
    assert [(t, d["id"]) for t, d in rows(document, before)] == [("comment.updated", parent.pk),
                                                                 ("comment.updated", reply.pk)]
    assert [m["variants"][READER][0] for m in sent] == ["comment.deleted", "comment.deleted"]
    assert json.loads(sent[1]["variants"][READER][1])["data"] == {"id": reply.pk}
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_unhide(comment=parent, by=moderator, reason="ok")
    assert [m["variants"] for m in sent[2:]] == [{}, {}]


def test_replay_shows_readers_hidden_and_deleted_comments_as_deleted(document, reviewer, maintainer, moderator):
    kept = services.comment_create(author=reviewer, document=document, body="kept")
    hidden = services.comment_create(author=reviewer, document=document, body="hidden body")
    reply = services.comment_create(author=maintainer, document=document, body="reply body", parent=hidden)
    deleted = services.comment_create(author=reviewer, document=document, body="deleted body")
    services.comment_hide(comment=hidden, by=moderator, reason="abuse")
    services.moderate_delete(target=deleted, by=moderator, reason="abuse")
    reader = replay(document, READER)
    assert "hidden body" not in json.dumps(reader) and "reply body" not in json.dumps(reader)
    assert "deleted body" not in json.dumps(reader)
    assert reader[0] == ("comment.created", reader[0][1]) and reader[0][1]["id"] == kept.pk
    assert reader[1:] == [("comment.deleted", {"id": hidden.pk}), ("comment.deleted", {"id": reply.pk}),
                          ("comment.deleted", {"id": deleted.pk}), ("comment.deleted", {"id": hidden.pk}),
                          ("comment.deleted", {"id": reply.pk}), ("comment.deleted", {"id": deleted.pk})]
    moderator_view = replay(document, MODERATOR)
    assert [t for t, _ in moderator_view] == ["comment.created"] * 4 + ["comment.updated"] * 2 + ["comment.deleted"]
    assert moderator_view[4][1]["hidden"] is True


def test_moderator_delete_removes_replies_and_keeps_a_log_entry(document, reviewer, maintainer, moderator,
                                                                django_capture_on_commit_callbacks):
    parent = services.comment_create(author=reviewer, document=document, body="to delete")
    reply = services.comment_create(author=maintainer, document=document, body="reply", parent=parent)
    Flag.objects.create(comment=parent, user=maintainer, reason=FlagReason.ABUSE)
    before = last_seq(document)
    parent_id, reply_id = parent.pk, reply.pk
    with django_capture_on_commit_callbacks(execute=True):
        assert services.moderate_delete(target=parent, by=moderator, reason="abuse") is True
    assert sorted(d["id"] for t, d in rows(document, before) if t == "comment.deleted") == [parent_id, reply_id]
    assert not Comment.objects.filter(pk__in=[parent_id, reply_id]).exists()
    assert not Flag.objects.exists()
    entry = ModerationLogEntry.objects.get()
    assert entry.action == ModerationAction.DELETE and entry.target_id == parent_id
    assert entry.old_state == {"hidden": False, "openFlags": 1, "body": "to delete", "author": "rob", "replies": 1}
    assert entry.new_state == {"deleted": True}
    # Deleting what is already gone is a no-op.
    assert services.moderate_delete(target=parent, by=moderator, reason="again") is False


def test_authors_deleting_their_own_comment_is_not_moderation(document, reviewer):
    comment = services.comment_create(author=reviewer, document=document, body="oops")
    services.comment_delete(comment=comment, by=reviewer)
    assert not ModerationLogEntry.objects.exists()


def test_mark_reviewed_clears_open_flags_keeps_content_emits_nothing(document, reviewer, viewer, maintainer,
                                                                     moderator):
    comment = services.comment_create(author=reviewer, document=document, body="edgy but fine")
    services.flag_create(user=viewer, target=comment, reason=FlagReason.ABUSE)
    services.flag_create(user=maintainer, target=comment, reason=FlagReason.OFF_TOPIC)
    before = last_seq(document)
    assert services.mark_reviewed(target=comment, by=moderator, reason="within the rules") == 2
    assert last_seq(document) == before
    comment.refresh_from_db()
    assert comment.body == "edgy but fine" and not comment.hidden
    assert Flag.objects.filter(cleared_at__isnull=True).count() == 0
    assert set(Flag.objects.values_list("cleared_by", flat=True)) == {moderator.pk}
    entry = ModerationLogEntry.objects.get()
    assert entry.action == ModerationAction.MARK_REVIEWED
    assert entry.old_state == {"hidden": False, "openFlags": 2} and entry.new_state == {"hidden": False,
                                                                                        "openFlags": 0}


def test_one_open_flag_per_user_per_item(document, reviewer, viewer, moderator):
    comment = services.comment_create(author=reviewer, document=document, body="x")
    services.flag_create(user=viewer, target=comment, reason=FlagReason.SPAM)
    with pytest.raises(services.ServiceError) as error:
        services.flag_create(user=viewer, target=comment, reason=FlagReason.ABUSE)
    assert error.value.code == "conflict"
    assert Flag.objects.count() == 1
    # Once a moderator has reviewed it, the same user may report it again.
    services.mark_reviewed(target=comment, by=moderator)
    services.flag_create(user=viewer, target=comment, reason=FlagReason.ABUSE)
    assert Flag.objects.filter(cleared_at__isnull=True).count() == 1


def test_flag_reasons_are_validated(document, reviewer, viewer):
    comment = services.comment_create(author=reviewer, document=document, body="x")
    with pytest.raises(services.ServiceError) as error:
        services.flag_create(user=viewer, target=comment, reason="boring")
    assert error.value.field == "reason"
    with pytest.raises(services.ServiceError) as error:
        services.flag_create(user=viewer, target=comment, reason=FlagReason.OTHER, note="  ")
    assert error.value.field == "note"
    flag = services.flag_create(user=viewer, target=comment, reason=FlagReason.OTHER, note="copied text")
    assert flag.note == "copied text" and flag.comment == comment and flag.message is None


def test_a_failed_moderation_action_writes_nothing(document, reviewer, moderator,
                                                   django_capture_on_commit_callbacks):
    comment = services.comment_create(author=reviewer, document=document, body="x")
    before = last_seq(document)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                services.comment_hide(comment=comment, by=moderator, reason="r")
                raise RuntimeError("abort")
    assert callbacks == [] and last_seq(document) == before
    assert not ModerationLogEntry.objects.exists() and not Comment.objects.get(pk=comment.pk).hidden


# --- revisions ----------------------------------------------------------------------------


def test_body_edits_are_kept_as_revisions(document, reviewer, maintainer):
    comment = services.comment_create(author=reviewer, document=document, body="first")
    services.comment_update(comment=comment, body="second")
    services.comment_update(comment=comment, resolved=True, by=maintainer)  # no body change: no revision
    services.comment_update(comment=comment, body="third", by=reviewer)
    revisions = list(CommentRevision.objects.filter(comment=comment).order_by("id"))
    assert [(r.body, r.editor) for r in revisions] == [("first", reviewer), ("second", reviewer)]
    assert Comment.objects.get(pk=comment.pk).body == "third"


# --- discussion messages ----------------------------------------------------------------------


@pytest.fixture
def message(document, reviewer):
    discussion = services.discussion_create(author=reviewer, document=document, title="Scope")
    return services.discussion_message_create(author=reviewer, discussion=discussion, body="rude words")


def test_hiding_a_message_reaches_readers_as_message_deleted(document, message, moderator, sent,
                                                             django_capture_on_commit_callbacks):
    before = last_seq(document)
    with django_capture_on_commit_callbacks(execute=True):
        services.message_hide(message=message, by=moderator, reason="abuse")
    [(kind, data)] = rows(document, before)
    assert kind == "discussion.message.updated" and data["hidden"] is True and data["id"] == message.pk
    variant_type, variant_payload = sent[-1]["variants"][READER]
    assert variant_type == "discussion.message.deleted"
    assert json.loads(variant_payload)["data"] == {"id": message.pk, "discussionId": message.discussion_id}
    assert "rude words" not in variant_payload
    entry = ModerationLogEntry.objects.get()
    assert (entry.target_type, entry.action, entry.document_id) == ("message", "hide", document.pk)
    reader = replay(document, READER)
    assert [t for t, _ in reader] == ["discussion.created", "discussion.message.deleted",
                                      "discussion.message.deleted"]
    assert "rude words" not in json.dumps(reader)
    with django_capture_on_commit_callbacks(execute=True):
        services.message_unhide(message=message, by=moderator, reason="context")
    assert rows(document, before + 1)[0][1]["hidden"] is False and sent[-1]["variants"] == {}


def test_deleting_a_message_emits_message_deleted_and_logs(document, message, moderator):
    before = last_seq(document)
    message_id, discussion_id = message.pk, message.discussion_id
    assert services.moderate_delete(target=message, by=moderator, reason="spam")
    assert rows(document, before) == [("discussion.message.deleted", {"id": message_id,
                                                                      "discussionId": discussion_id})]
    assert not DiscussionMessage.objects.filter(pk=message_id).exists()
    entry = ModerationLogEntry.objects.get()
    assert entry.old_state["body"] == "rude words" and entry.new_state == {"deleted": True}


def test_mark_reviewed_and_flags_work_for_messages(document, message, viewer, moderator):
    services.flag_create(user=viewer, target=message, reason=FlagReason.ABUSE)
    with pytest.raises(services.ServiceError):
        services.flag_create(user=viewer, target=message, reason=FlagReason.SPAM)
    assert services.mark_reviewed(target=message, by=moderator) == 1
    assert ModerationLogEntry.objects.get().target_type == "message"
