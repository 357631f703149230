"""The server-rendered pages, in process: sign-in, the document list, the review page."""

from __future__ import annotations

import json
import re

import pytest

from reviews import services
from reviews.models import Document, Role, Visibility
from reviews.rendering import render_passages, split_blocks

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client):
    def sign_in(user):
        client.force_login(user)
        return client
    return sign_in


def embedded_state(response) -> dict:
    match = re.search(rb'<script id="review-state" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, "the page embeds its state with json_script"
    return json.loads(match.group(1))


def test_login_page_renders_and_signs_in(client, reviewer):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert b'<label for="id_username">Username</label>' in page.content
    assert b'autocomplete="current-password"' in page.content
    response = client.post("/accounts/login/", {"username": "rob", "password": "rob-pass-123"})
    assert response.status_code == 302 and response["Location"] == "/"
    wrong = client.post("/accounts/login/", {"username": "rob", "password": "nope"})
    assert wrong.status_code == 200 and b'role="alert"' in wrong.content


def test_pages_need_a_signed_in_user(client, document):
    assert client.get("/")["Location"].startswith("/accounts/login/")
    assert client.get("/docs/guides/setup.md")["Location"].startswith("/accounts/login/")


def test_logout_is_a_post_from_every_page(signed_in, reviewer, document):
    client = signed_in(reviewer)
    page = client.get("/")
    assert b'action="/accounts/logout/"' in page.content
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_index_lists_readable_documents_with_open_comment_counts(signed_in, document, reviewer, maintainer, outsider):
    services.comment_create(author=reviewer, document=document, body="open one")
    resolved = services.comment_create(author=reviewer, document=document, body="done")
    services.comment_update(comment=resolved, resolved=True)
    parent = services.comment_create(author=reviewer, document=document, body="with reply")
    services.comment_create(author=maintainer, document=document, body="a reply", parent=parent)
    services.document_create(user=outsider, path="private/other.md", title="Not for rob")
    response = signed_in(reviewer).get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/docs/guides/setup.md"' in html and "Setup" in html
    assert "Not for rob" not in html
    # Two open top-level comments: the resolved one and the reply do not count.
    assert 'aria-label="2 open comments"' in html


def test_index_creates_a_document_and_redirects_to_it(signed_in, outsider):
    client = signed_in(outsider)
    response = client.post("/", {"title": "Notes", "path": "team/notes.md", "visibility": "internal",
                                 "content": "# Notes\n"})
    assert response.status_code == 302 and response["Location"] == "/docs/team/notes.md"
    document = Document.objects.get(path="team/notes.md")
    assert document.visibility == Visibility.INTERNAL
    assert document.memberships.get().user == outsider and document.memberships.get().role == Role.MAINTAINER


def test_content_typed_in_the_browser_is_stored_with_its_own_line_breaks(signed_in, outsider):
    response = signed_in(outsider).post("/", {"title": "Notes", "path": "team/notes.md", "visibility": "private",
                                              "content": "# Notes\r\n\r\n  Indented, kept.\r\n"})
    assert response.status_code == 302
    assert Document.objects.get(path="team/notes.md").content == "# Notes\n\n  Indented, kept.\n"


@pytest.mark.parametrize("path", ["/abs.md", "a/../b.md", "a b.md", ""])
def test_index_form_rejects_invalid_paths(signed_in, outsider, path):
    response = signed_in(outsider).post("/", {"title": "T", "path": path, "visibility": "private"})
    assert response.status_code == 400
    assert b"field-error" in response.content
    assert not Document.objects.exists()


def test_index_form_errors_are_tied_to_their_fields_and_the_first_gets_the_focus(signed_in, outsider):
    response = signed_in(outsider).post("/", {"title": "", "path": "a b.md", "visibility": "private"})
    assert response.status_code == 400
    html = response.content.decode()
    title = re.search(r'<input[^>]*name="title"[^>]*>', html).group(0)
    path = re.search(r'<input[^>]*name="path"[^>]*>', html).group(0)
    # A screen reader reads each error with its field; the form opens on the first one.
    assert 'aria-describedby="id_title-error"' in title and "autofocus" in title
    assert 'aria-describedby="id_path-error path-help"' in path and "autofocus" not in path
    assert 'id="id_title-error"' in html and 'id="id_path-error"' in html
    clean = signed_in(outsider).get("/").content.decode()
    assert "autofocus" not in clean and 'aria-describedby="path-help"' in clean


def test_index_form_reports_a_taken_path(signed_in, outsider, document):
    response = signed_in(outsider).post("/", {"title": "T", "path": "guides/setup.md", "visibility": "private"})
    assert response.status_code == 400 and b"already exists" in response.content
    assert Document.objects.count() == 1


def test_review_page_embeds_state_after_its_last_event_id(signed_in, document, reviewer, maintainer):
    comment = services.comment_create(author=reviewer, document=document, body="<b>not bold</b>")
    discussion = services.discussion_create(author=maintainer, document=document, title="Plan")
    services.discussion_message_create(author=reviewer, discussion=discussion, body="hi")
    document.refresh_from_db()
    response = signed_in(reviewer).get("/docs/guides/setup.md")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    state = embedded_state(response)
    assert state["doc"]["lastEventId"] == document.stream.last_id == 3
    assert state["doc"]["role"] == "reviewer" and state["canReview"] and not state["canMaintain"]
    assert state["comments"][0]["id"] == comment.pk
    assert state["comments"][0]["body"] == "<b>not bold</b>"
    assert state["discussions"][0]["messages"][0]["body"] == "hi"
    assert state["members"] is None, "only maintainers get the members panel"
    # User text is only in the JSON (escaped by json_script), never as markup.
    assert b"<b>not bold</b>" not in response.content


def test_review_page_for_a_maintainer_has_the_members_panel(signed_in, document, maintainer):
    response = signed_in(maintainer).get("/docs/guides/setup.md")
    state = embedded_state(response)
    assert [m["username"] for m in state["members"]] == ["maria", "rob", "vera"]
    assert b'id="member-form"' in response.content


def test_review_page_has_a_labelled_panel_for_comments_on_removed_text(signed_in, document, reviewer):
    quote = "Configure the database."
    start = document.content.index(quote)
    comment = services.comment_create(author=reviewer, document=document, body="Which one?",
                                      anchor={"quote": quote, "start": start, "end": start + len(quote)})
    reworded = document.content.replace(quote, "Configure the Postgres database.")
    services.document_update(document=document, content=reworded)
    services.document_update(document=document, content=reworded.replace("\nConfigure the Postgres database.\n", ""))
    response = signed_in(reviewer).get("/docs/guides/setup.md")
    html = response.content.decode()
    # Filled and shown by the page script; hidden (an attribute, not a style) while empty.
    panel = re.search(r'<section id="orphans-panel"[^>]*>', html).group(0)
    assert 'aria-labelledby="orphans-title"' in panel and " hidden" in panel
    assert '<h2 id="orphans-title" class="panel-title">Comments on removed text</h2>' in html
    assert '<div id="orphan-threads" class="thread-list"></div>' in html
    # What the panel shows: the comment's anchor is orphaned and keeps the text it was written on.
    (state,) = [c for c in embedded_state(response)["comments"] if c["id"] == comment.pk]
    assert state["anchor"]["state"] == "orphaned"
    assert state["anchor"]["originalQuote"] == quote


def test_review_page_of_a_document_one_may_not_read_is_404(signed_in, document, outsider):
    client = signed_in(outsider)
    assert client.get("/docs/guides/setup.md").status_code == 404
    assert client.get("/docs/no/such.md").status_code == 404
    assert client.get("/docs/guides/setup.md?format=json").status_code == 404


def test_review_page_json_has_state_and_passages(signed_in, document, reviewer):
    response = signed_in(reviewer).get("/docs/guides/setup.md?format=json")
    assert response.status_code == 200
    body = response.json()
    assert body["doc"]["content"] == document.content
    assert '<div class="passage" data-start="0" data-end="7">' in body["html"]


def test_pages_follow_the_content_security_policy_rules(signed_in, document, maintainer):
    client = signed_in(maintainer)
    for url in ("/", "/docs/guides/setup.md", "/accounts/login/"):
        html = client.get(url).content.decode()
        assert " style=" not in html, f"inline style attribute on {url}"
        assert not re.search(r"\son[a-z]+=", html), f"inline event handler on {url}"
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert 'type="module" src=' in tag or 'type="application/json"' in tag, tag


def test_markdown_is_rendered_and_sanitised(signed_in, maintainer):
    content = ("# Title\n\nSome *text* with [a link](https://example.com) and [bad](javascript:alert(1)).\n\n"
               "<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n"
               "<p style=\"color:red\" onclick=\"x()\">styled</p>\n")
    services.document_create(user=maintainer, path="x.md", title="X", content=content)
    html = signed_in(maintainer).get("/docs/x.md").content.decode()
    article = html.split('id="doc"', 1)[1].split("</article>", 1)[0]
    assert "<h1>Title</h1>" in article and "<em>text</em>" in article
    assert 'href="https://example.com"' in article
    assert "javascript:" not in article and "<script" not in article
    assert "onerror" not in article and "onclick" not in article and "style=" not in article


def test_blocks_keep_their_source_offsets():
    content = "# A\n\nPara one\nstill one.\n\n- x\n- y\n\n  more y\n\n```\ncode\n\nstill code\n```\n\nEnd."
    blocks = split_blocks(content)
    assert [b.source for b in blocks] == [
        "# A", "Para one\nstill one.", "- x\n- y\n\n  more y", "```\ncode\n\nstill code\n```", "End."]
    assert all(content[b.start:b.end] == b.source for b in blocks)
    html = render_passages(content)
    assert html.count('class="passage"') == 5
    assert html.count("<ul>") == 1, "a loose list stays one list"


def test_an_empty_document_renders_a_placeholder():
    assert "This document is empty." in render_passages("")


def _queries(run) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    return len(captured)


def test_the_review_page_and_the_document_lists_take_as_many_queries_for_many_items_as_for_one(
        signed_in, document, reviewer, maintainer, api):
    client = signed_in(reviewer)
    page = lambda: client.get("/docs/guides/setup.md")  # noqa: E731
    lists = lambda: (client.get("/"), api(reviewer).get("/api/documents/"))  # noqa: E731
    discussion = services.discussion_create(author=reviewer, document=document, title="First")
    services.discussion_message_create(author=reviewer, discussion=discussion, body="hi")
    page(), lists()  # warm: sessions, content types
    one_page, one_list = _queries(page), _queries(lists)
    for i in range(5):
        more = services.discussion_create(author=maintainer, document=document, title=f"More {i}")
        services.discussion_message_create(author=maintainer, discussion=more, body="and more")
        other = services.document_create(user=maintainer, path=f"more/doc-{i}.md", title=f"Doc {i}", content="x")
        services.member_set(document=other, user=reviewer, role=Role.VIEWER)
    assert _queries(page) == one_page
    assert _queries(lists) == one_list
