"""Flagging, hiding and deleting through the REST API."""

from __future__ import annotations

import pytest

from realtime.models import Event
from reviews import services
from reviews.models import DiscussionMessage, Flag, ModerationLogEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def comment(document, reviewer):
    return services.comment_create(author=reviewer, document=document, body="questionable")


@pytest.fixture
def message(document, reviewer):
    discussion = services.discussion_create(author=reviewer, document=document, title="Scope")
    return services.discussion_message_create(author=reviewer, discussion=discussion, body="questionable")


def test_any_reader_flags_a_comment_once(api, document, comment, viewer):
    before = Event.objects.count()
    response = api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "spam", "note": "link farm"},
                                format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["target"] == {"type": "comment", "id": comment.pk}
    assert (body["reason"], body["note"]) == ("spam", "link farm") and body["createdAt"].endswith("Z")
    again = api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "abuse"}, format="json")
    assert again.status_code == 409
    assert Flag.objects.count() == 1
    assert Event.objects.count() == before  # flags are for moderators, not the stream


def test_flag_input_is_validated(api, comment, viewer):
    bad = api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "boring"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()
    other = api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "other"}, format="json")
    assert other.status_code == 400 and "note" in other.json()
    long_note = api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "other", "note": "x" * 1001},
                                 format="json")
    assert long_note.status_code == 400
    assert not Flag.objects.exists()


def test_flagging_what_you_cannot_see_is_404(api, comment, outsider, moderator, viewer):
    assert api(outsider).post(f"/api/comments/{comment.pk}/flag/", {"reason": "spam"},
                              format="json").status_code == 404
    assert api(viewer).post("/api/comments/999999/flag/", {"reason": "spam"}, format="json").status_code == 404
    services.comment_hide(comment=comment, by=moderator, reason="gone")
    assert api(viewer).post(f"/api/comments/{comment.pk}/flag/", {"reason": "spam"},
                            format="json").status_code == 404
    assert api(None).post(f"/api/comments/{comment.pk}/flag/", {"reason": "spam"},
                          format="json").status_code == 401


def test_messages_are_flagged_at_both_addresses(api, message, viewer, maintainer):
    short = api(viewer).post(f"/api/messages/{message.pk}/flag/", {"reason": "abuse"}, format="json")
    assert short.status_code == 201 and short.json()["target"] == {"type": "message", "id": message.pk}
    nested = api(maintainer).post(f"/api/discussions/{message.discussion_id}/messages/{message.pk}/flag/",
                                  {"reason": "off-topic"}, format="json")
    assert nested.status_code == 201
    wrong = api(maintainer).post(f"/api/discussions/{message.discussion_id + 1}/messages/{message.pk}/flag/",
                                 {"reason": "spam"}, format="json")
    assert wrong.status_code == 404
    assert Flag.objects.filter(message=message).count() == 2


def test_hide_and_unhide_need_a_maintainer_or_moderator_and_a_reason(api, document, comment, reviewer, maintainer,
                                                                     moderator, viewer):
    url = f"/api/comments/{comment.pk}/hide/"
    assert api(reviewer).post(url, {"reason": "mine"}, format="json").status_code == 403
    assert api(maintainer).post(url, {}, format="json").status_code == 400
    hidden = api(maintainer).post(url, {"reason": "off-topic rant"}, format="json")
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    assert api(viewer).get(f"/api/comments/{comment.pk}/").status_code == 404
    # A moderator who is not a member moderates every document.
    shown = api(moderator).post(f"/api/comments/{comment.pk}/unhide/", {"reason": "ok"}, format="json")
    assert shown.status_code == 200 and shown.json()["hidden"] is False
    entries = list(ModerationLogEntry.objects.order_by("id").values_list("actor__username", "action", "reason"))
    assert entries == [("maria", "hide", "off-topic rant"), ("mod", "unhide", "ok")]


def test_hidden_messages_leave_readers_lists_and_can_be_deleted(api, message, viewer, maintainer, reviewer):
    url = f"/api/discussions/{message.discussion_id}/messages/"
    assert api(viewer).post(f"/api/messages/{message.pk}/hide/", {"reason": "x"}, format="json").status_code == 403
    hidden = api(maintainer).post(f"/api/messages/{message.pk}/hide/", {"reason": "abuse"}, format="json")
    assert hidden.status_code == 200 and hidden.json()["hidden"] is True
    assert api(viewer).get(url).json()["results"] == []
    # Maintainers still list it, marked as hidden.
    assert [(m["id"], m["hidden"]) for m in api(maintainer).get(url).json()["results"]] == [(message.pk, True)]
    assert api(viewer).delete(f"/api/messages/{message.pk}/").status_code == 404
    assert api(maintainer).delete(f"/api/messages/{message.pk}/").status_code == 204
    assert not DiscussionMessage.objects.exists()
    assert ModerationLogEntry.objects.filter(action="delete", target_type="message").count() == 1


def test_authors_delete_their_own_messages(api, message, reviewer, viewer):
    assert api(reviewer).delete(f"/api/messages/{message.pk}/").status_code == 204
    assert not ModerationLogEntry.objects.exists()


def test_revisions_are_visible_to_moderators_only(api, comment, reviewer, maintainer, moderator):
    assert api(reviewer).patch(f"/api/comments/{comment.pk}/", {"body": "reworded"}, format="json").status_code == 200
    url = f"/api/comments/{comment.pk}/revisions/"
    assert api(reviewer).get(url).status_code == 403
    [revision] = api(moderator).get(url).json()
    assert revision["body"] == "questionable" and revision["editor"]["username"] == "rob"
    assert api(maintainer).get(url).status_code == 200
