"""The moderation console: real admin pages and form posts, with CSRF."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from realtime.models import Event
from reviews import services
from reviews.anchoring import MOVED
from reviews.models import Comment, Document, Flag, FlagReason, Membership, ModerationLogEntry, Role
from tests.conftest import DOC_CONTENT, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/reviews/comment/"


def csrf_token(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def console(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def post_action(client: Client, url: str, action: str, ids: list[int], **fields) -> object:
    """Choose an action in the changelist form (the first step), as the browser does."""
    page = client.get(url)
    assert page.status_code == 200
    data = {"csrfmiddlewaretoken": csrf_token(page.content.decode()), "action": action, "index": "0",
            "select_across": "0", "_selected_action": [str(i) for i in ids], **fields}
    return client.post(url, data)


def confirm(client: Client, url: str, intermediate, **fields):
    """Submit the intermediate reason form exactly as rendered."""
    html = intermediate.content.decode()
    form = html[html.index('<form method="post">'):]
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    data: dict[str, list[str]] = {}
    for name, value in hidden:
        data.setdefault(name, []).append(value)
    data.update({key: [value] for key, value in fields.items()})
    return client.post(url, data)


def events_after(document, seq: int):
    return list(Event.objects.filter(stream__key=document.path, seq__gt=seq).order_by("seq")
                .values_list("type", "data"))


def last_seq(document) -> int:
    return Event.objects.filter(stream__key=document.path).count()


@pytest.fixture
def comment(document, reviewer):
    return services.comment_create(author=reviewer, document=document, body="cheap watches here")


def test_a_moderator_hides_a_comment_through_the_admin_action_form(document, comment, moderator):
    client = console(moderator)
    before = last_seq(document)
    intermediate = post_action(client, CHANGELIST, "hide", [comment.pk])
    assert intermediate.status_code == 200
    assert b"Reason" in intermediate.content and b"cheap watches here" in intermediate.content
    assert not Comment.objects.get(pk=comment.pk).hidden  # nothing happens before the reason is given
    done = confirm(client, CHANGELIST, intermediate, reason="spam")
    assert done.status_code == 302
    assert Comment.objects.get(pk=comment.pk).hidden
    [(kind, data)] = events_after(document, before)
    assert kind == "comment.updated" and data["hidden"] is True
    entry = ModerationLogEntry.objects.get()
    assert (entry.actor, entry.action, entry.reason) == (moderator, "hide", "spam")
    # The item's page shows its moderation log.
    page = client.get(f"/admin/reviews/comment/{comment.pk}/change/").content.decode()
    assert "Moderation log" in page and "spam" in page and "Hidden" in page and "mod" in page


def test_a_reason_is_required_to_hide(document, comment, moderator):
    client = console(moderator)
    intermediate = post_action(client, CHANGELIST, "hide", [comment.pk])
    again = confirm(client, CHANGELIST, intermediate, reason="")
    assert again.status_code == 200 and b"This field is required" in again.content
    assert not Comment.objects.get(pk=comment.pk).hidden and not ModerationLogEntry.objects.exists()


def test_unhide_mark_reviewed_and_delete_through_the_admin(document, comment, moderator, viewer, maintainer):
    client = console(moderator)
    services.flag_create(user=viewer, target=comment, reason=FlagReason.SPAM)
    services.flag_create(user=maintainer, target=comment, reason=FlagReason.ABUSE)
    confirm(client, CHANGELIST, post_action(client, CHANGELIST, "hide", [comment.pk]), reason="spam")
    confirm(client, CHANGELIST, post_action(client, CHANGELIST, "unhide", [comment.pk]), reason="appeal")
    assert not Comment.objects.get(pk=comment.pk).hidden
    reviewed = confirm(client, CHANGELIST, post_action(client, CHANGELIST, "mark_reviewed", [comment.pk]))
    assert reviewed.status_code == 302  # the reason is optional here
    assert not Flag.objects.filter(cleared_at__isnull=True).exists() and Comment.objects.filter(pk=comment.pk).exists()
    before = last_seq(document)
    confirm(client, CHANGELIST, post_action(client, CHANGELIST, "delete_with_reason", [comment.pk]), reason="abuse")
    assert not Comment.objects.filter(pk=comment.pk).exists()
    assert events_after(document, before) == [("comment.deleted", {"id": comment.pk})]
    actions = list(ModerationLogEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["hide", "unhide", "mark_reviewed", "delete"]


def test_staff_without_the_permission_neither_sees_nor_uses_the_actions(document, comment):
    staff = make_user("clerk", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_comment"))
    staff = User.objects.get(pk=staff.pk)
    client = console(staff)
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and b'value="hide"' not in page.content
    forged = post_action(client, CHANGELIST, "hide", [comment.pk])
    confirm_attempt = client.post(CHANGELIST, {"csrfmiddlewaretoken": csrf_token(page.content.decode()),
                                               "action": "hide", "_selected_action": [str(comment.pk)],
                                               "apply": "yes", "reason": "x"})
    assert forged.status_code in (200, 302) and confirm_attempt.status_code in (200, 302)
    assert not Comment.objects.get(pk=comment.pk).hidden and not ModerationLogEntry.objects.exists()
    assert client.get("/admin/reviews/moderationlogentry/").status_code == 403
    assert client.get("/admin/reviews/flaggedcomment/").status_code == 403


def test_a_moderator_without_model_permissions_sees_the_console(moderator, comment):
    client = console(moderator)
    index = client.get("/admin/").content.decode()
    for name in ("Comments", "Moderation queue: comments", "Moderation log", "Flags", "Discussion messages"):
        assert name in index
    page = client.get(CHANGELIST).content.decode()
    for action in ("hide", "unhide", "mark_reviewed", "delete_with_reason"):
        assert f'value="{action}"' in page
    assert 'value="delete_selected"' not in page  # deleting is the logged action


def test_the_queue_lists_flagged_items_most_flagged_first(document, reviewer, viewer, maintainer, moderator):
    once = services.comment_create(author=reviewer, document=document, body="flagged once")
    twice = services.comment_create(author=reviewer, document=document, body="flagged twice")
    services.comment_create(author=reviewer, document=document, body="never flagged")
    services.flag_create(user=viewer, target=once, reason=FlagReason.SPAM)
    services.flag_create(user=viewer, target=twice, reason=FlagReason.ABUSE)
    services.flag_create(user=maintainer, target=twice, reason=FlagReason.ABUSE)
    client = console(moderator)
    html = client.get("/admin/reviews/flaggedcomment/").content.decode()
    assert "never flagged" not in html
    assert html.index("flagged twice") < html.index("flagged once")
    assert "Abuse ×2" in html
    services.mark_reviewed(target=twice, by=moderator)
    html = client.get("/admin/reviews/flaggedcomment/").content.decode()
    assert "flagged twice" not in html and "flagged once" in html


def test_filters_and_search(document, reviewer, maintainer, viewer, moderator):
    other = services.document_create(user=maintainer, path="notes/other.md", title="Other", content="x")
    services.comment_create(author=maintainer, document=other, body="elsewhere")
    hidden = services.comment_create(author=reviewer, document=document, body="hidden one")
    services.comment_hide(comment=hidden, by=moderator, reason="r")
    flagged = services.comment_create(author=reviewer, document=document, body="flagged one")
    services.flag_create(user=viewer, target=flagged, reason=FlagReason.SPAM)
    client = console(moderator)

    def listed(query: str) -> set[str]:
        response = client.get(CHANGELIST + query)
        assert response.status_code == 200
        return {body for body in ("elsewhere", "hidden one", "flagged one") if body in response.content.decode()}

    assert listed("") == {"elsewhere", "hidden one", "flagged one"}
    assert listed(f"?document__id__exact={other.pk}") == {"elsewhere"}
    assert listed("?hidden__exact=1") == {"hidden one"}
    assert listed("?flagged=yes") == {"flagged one"}
    assert listed("?q=notes/other") == {"elsewhere"}
    assert listed("?created_at__gte=2000-01-01+00:00:00%2B00:00") == {"elsewhere", "hidden one", "flagged one"}
    assert client.get("/admin/reviews/suggestion/?status__exact=open").status_code == 200
    assert client.get("/admin/reviews/discussionmessage/?hidden__exact=0&flagged=no").status_code == 200
    assert client.get("/admin/reviews/moderationlogentry/?action__exact=hide").status_code == 200
    # The event log (realtime's read-only admin) needs realtime.view_event.
    moderator.user_permissions.add(Permission.objects.get(codename="view_event"))
    client = console(User.objects.get(pk=moderator.pk))
    events = client.get(f"/admin/realtime/event/?stream__id__exact={document.stream_id}")
    assert events.status_code == 200 and b"comment.created" in events.content


def test_change_pages_link_related_objects_and_show_revisions(document, comment, reviewer, moderator):
    services.comment_update(comment=comment, body="edited body")
    reply = services.comment_create(author=reviewer, document=document, body="a reply", parent=comment)
    client = console(moderator)
    page = client.get(f"/admin/reviews/comment/{comment.pk}/change/").content.decode()
    assert f"/admin/reviews/document/{document.pk}/change/" in page
    assert f"/admin/auth/user/{reviewer.pk}/change/" in page
    assert f"/admin/reviews/comment/{reply.pk}/change/" in page
    assert "cheap watches here" in page  # the earlier body, as a revision
    assert 'value="hide"' in page  # the moderation buttons on the item's page
    doc_page = client.get(f"/admin/reviews/document/{document.pk}/change/").content.decode()
    assert f"/admin/reviews/comment/?document__id__exact={document.pk}" in doc_page
    assert f"/admin/realtime/event/?stream__id__exact={document.stream_id}" in doc_page


def admin_change_form(document, *, title: str, content: str):
    """A superuser's client, the document's admin change URL, and the form as
    the page sends it (members as they are), with ``title`` and ``content``."""
    client = console(User.objects.create_superuser("root", password="root-pass-123"))
    url = f"/admin/reviews/document/{document.pk}/change/"
    page = client.get(url).content.decode()
    memberships = list(Membership.objects.filter(document=document).order_by("id"))
    data = {"csrfmiddlewaretoken": csrf_token(page), "title": title, "visibility": "private", "content": content,
            "memberships-TOTAL_FORMS": str(len(memberships)), "memberships-INITIAL_FORMS": str(len(memberships)),
            "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"}
    for i, membership in enumerate(memberships):
        data |= {f"memberships-{i}-id": str(membership.pk), f"memberships-{i}-document": str(document.pk),
                 f"memberships-{i}-user": str(membership.user_id), f"memberships-{i}-role": membership.role}
    return client, url, data


def test_editing_a_document_in_the_admin_goes_through_the_service(document, reviewer):
    comment = services.comment_create(author=reviewer, document=document, body="c",
                                      anchor={"quote": "Configure", "start": DOC_CONTENT.index("Configure"),
                                              "end": DOC_CONTENT.index("Configure") + 9})
    client, url, data = admin_change_form(document, title="Setup guide", content="Read this first.\n\n" + DOC_CONTENT)
    data["memberships-2-role"] = Role.REVIEWER  # vera: viewer -> reviewer
    before = last_seq(document)
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    document.refresh_from_db()
    assert document.version == 2 and document.title == "Setup guide"
    assert [t for t, _ in events_after(document, before)] == ["document.updated", "comment.updated"]
    comment.refresh_from_db()
    assert comment.anchor["state"] == MOVED
    assert Membership.objects.get(document=document, user__username="vera").role == Role.REVIEWER


def test_a_title_edit_in_the_admin_leaves_the_content_as_it_was(document, reviewer):
    """A browser submits the textarea with CRLF line breaks: the same text, not a new version."""
    start = DOC_CONTENT.index("make run.\n\nConfigure")
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="x",
                                            anchor={"quote": "make run.\n\nConfigure", "start": start,
                                                    "end": start + len("make run.\n\nConfigure")})
    client, url, data = admin_change_form(document, title="Setup guide", content=DOC_CONTENT.replace("\n", "\r\n"))
    before = last_seq(document)
    assert client.post(url, data).status_code == 302
    document.refresh_from_db()
    assert document.title == "Setup guide" and document.content == DOC_CONTENT and document.version == 1
    assert [t for t, _ in events_after(document, before)] == ["document.updated"]
    suggestion.refresh_from_db()
    assert suggestion.status == "open"


def test_the_last_maintainer_cannot_be_removed_in_the_admin(document):
    client, url, data = admin_change_form(document, title="Setup", content=DOC_CONTENT)
    data["memberships-0-role"] = Role.VIEWER  # maria was the only maintainer
    response = client.post(url, data)
    assert response.status_code == 200 and b"at least one maintainer" in response.content
    assert Membership.objects.get(document=document, user__username="maria").role == Role.MAINTAINER


def test_adding_a_document_in_the_admin_makes_the_creator_maintainer(moderator):
    admin_user = User.objects.create_superuser("root", password="root-pass-123")
    client = console(admin_user)
    page = client.get("/admin/reviews/document/add/").content.decode()
    response = client.post("/admin/reviews/document/add/", {
        "csrfmiddlewaretoken": csrf_token(page), "path": "ops/runbook.md", "title": "Runbook",
        "visibility": "internal", "content": "Steps.", "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0", "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"})
    assert response.status_code == 302
    document = Document.objects.get(path="ops/runbook.md")
    assert Membership.objects.get(document=document).user == admin_user
    bad = client.post("/admin/reviews/document/add/", {
        "csrfmiddlewaretoken": csrf_token(page), "path": "../etc", "title": "x", "visibility": "private",
        "content": "", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0", "memberships-MAX_NUM_FORMS": "1000"})
    assert bad.status_code == 200 and not Document.objects.filter(path="../etc").exists()


def test_messages_are_moderated_in_their_admin(document, reviewer, moderator):
    discussion = services.discussion_create(author=reviewer, document=document, title="Scope")
    message = services.discussion_message_create(author=reviewer, discussion=discussion, body="rude")
    client = console(moderator)
    url = "/admin/reviews/discussionmessage/"
    before = last_seq(document)
    confirm(client, url, post_action(client, url, "hide", [message.pk]), reason="abuse")
    [(kind, data)] = events_after(document, before)
    assert kind == "discussion.message.updated" and data["hidden"] is True
    page = client.get(f"{url}{message.pk}/change/").content.decode()
    assert "abuse" in page and f"/admin/reviews/discussion/{discussion.pk}/change/" in page


def test_suggestions_discussions_and_logs_are_read_only(document, reviewer, moderator):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor={"quote": "Configure", "start": DOC_CONTENT.index("Configure"),
                                                    "end": DOC_CONTENT.index("Configure") + 9})
    admin_user = User.objects.create_superuser("root", password="root-pass-123")
    client = console(admin_user)
    page = client.get(f"/admin/reviews/suggestion/{suggestion.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get("/admin/reviews/suggestion/add/").status_code == 403
    assert client.get(f"/admin/reviews/suggestion/{suggestion.pk}/delete/").status_code == 403
    assert client.get(f"/admin/reviews/document/{document.pk}/delete/").status_code == 403


def test_moderating_from_an_items_page_returns_to_it(document, comment, moderator):
    client = console(moderator)
    url = f"/admin/reviews/comment/{comment.pk}/change/"
    page = client.get(url).content.decode()
    assert 'value="hide"' in page and 'value="unhide"' not in page
    # The item's "Hide…" button: a form of its own, posted to the changelist.
    form = page[page.index('class="moderation-action"'):]
    form = form[:form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert fields["action"] == "hide" and fields["_selected_action"] == str(comment.pk)
    intermediate = client.post(CHANGELIST, fields)
    assert intermediate.status_code == 200
    done = confirm(client, CHANGELIST, intermediate, reason="spam")
    assert done.status_code == 302 and done["Location"] == url
    page = client.get(url).content.decode()
    assert 'value="unhide"' in page and 'value="hide"' not in page
    assert Comment.objects.get(pk=comment.pk).hidden


def test_reviewing_from_the_queue_returns_to_the_items_own_page(document, comment, viewer, moderator):
    services.flag_create(user=viewer, target=comment, reason=FlagReason.SPAM)
    client = console(moderator)
    queue = "/admin/reviews/flaggedcomment/"
    page = client.get(f"{queue}{comment.pk}/change/")
    assert page.status_code == 200 and 'value="mark_reviewed"' in page.content.decode()
    intermediate = client.post(queue, {"csrfmiddlewaretoken": csrf_token(page.content.decode()),
                                       "action": "mark_reviewed", "_selected_action": str(comment.pk),
                                       "_return": "item"})
    done = confirm(client, queue, intermediate)
    assert done.status_code == 302 and done["Location"] == f"/admin/reviews/comment/{comment.pk}/change/"
    assert "cheap watches here" not in client.get(queue).content.decode()


def test_the_moderation_log_links_its_items_in_as_many_queries_for_many_entries_as_for_few(
        document, reviewer, moderator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = console(moderator)
    url = "/admin/reviews/moderationlogentry/"

    def hide_and_unhide(body):
        comment = services.comment_create(author=reviewer, document=document, body=body)
        services.comment_hide(comment=comment, by=moderator, reason="r")
        services.comment_unhide(comment=comment, by=moderator, reason="r")
        return comment

    gone = hide_and_unhide("soon deleted")
    kept = hide_and_unhide("kept")
    services.moderate_delete(target=gone, by=moderator, reason="spam")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        page = client.get(url).content.decode()
    assert f'/admin/reviews/comment/{kept.pk}/change/"' in page and f"Comment {gone.pk} (deleted)" in page
    for i in range(5):
        hide_and_unhide(f"more {i}")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)
