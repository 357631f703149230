"""Comments and suggestions stay attached to the right text while the document changes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from realtime.models import Event
from reviews import anchoring, services
from reviews.anchoring import EXACT, MOVED, ORPHANED, relocate
from reviews.models import Comment, Suggestion, SuggestionStatus
from tests.conftest import DOC_CONTENT

pytestmark = pytest.mark.django_db


def events_of(document, after: int = 0):
    return list(Event.objects.filter(stream__key=document.path, seq__gt=after).order_by("seq")
                .values_list("type", "data"))


def last_seq(document) -> int:
    return Event.objects.filter(stream__key=document.path).order_by("-seq").values_list("seq", flat=True).first() or 0


def anchor_on(content: str, quote: str, occurrence: int = 0) -> dict:
    start = -1
    for _ in range(occurrence + 1):
        start = content.index(quote, start + 1)
    return {"quote": quote, "start": start, "end": start + len(quote)}


def comment_on(document, author, quote: str, occurrence: int = 0) -> Comment:
    return services.comment_create(author=author, document=document, body=f"About {quote!r}",
                                   anchor=anchor_on(document.content, quote, occurrence))


def placed(comment: Comment, content: str) -> str:
    return content[comment.anchor["start"]:comment.anchor["end"]]


# --- relocate() ------------------------------------------------------------------------


def test_unchanged_passage_is_exact():
    old = "alpha beta gamma"
    result = relocate(anchor_on(old, "beta"), old + " delta", old_content=old)
    assert (result.state, result.confidence) == (EXACT, 1.0)
    assert (result.anchor["start"], result.anchor["end"]) == (6, 10)


def test_text_inserted_before_moves_the_anchor_with_its_passage():
    old = "alpha beta gamma"
    new = "zero " + old
    result = relocate(anchor_on(old, "beta"), new, old_content=old)
    assert result.state == MOVED and result.confidence == 1.0
    assert new[result.anchor["start"]:result.anchor["end"]] == "beta"
    assert result.anchor["prefix"].endswith("alpha ") and result.anchor["suffix"].startswith(" gamma")


def test_a_repeated_quote_stays_with_its_own_occurrence():
    old = "Run it. Then run it again. Finally run it."
    anchor = anchor_on(old, "run it", occurrence=1)  # "Finally run it"
    new = "Before anything: " + old.replace("Then", "After that")
    result = relocate(anchor, new, old_content=old)
    assert result.state == MOVED
    assert new[result.anchor["start"] - 8:result.anchor["end"]] == "Finally run it"


def test_without_the_old_content_quote_and_context_disambiguate():
    old = "one cat here. two cat there."
    anchor = anchoring.with_context(anchor_on(old, "cat", occurrence=1), old)
    new = "Intro. " + old
    result = relocate(anchor, new)
    assert result.state == MOVED
    assert new[result.anchor["start"]:result.anchor["end"] + 6] == "cat there"


def test_a_slightly_edited_passage_is_moved_with_lower_confidence_and_keeps_its_original_quote():
    old = "Intro.\n\nInstall Python, then run make run.\n\nEnd.\n"
    new = "Intro.\n\nInstall Python 3.11, then run make run.\n\nEnd.\n"
    result = relocate(anchor_on(old, "Install Python, then run"), new, old_content=old)
    assert result.state == MOVED
    assert 0.6 <= result.confidence < 1.0
    assert result.anchor["quote"] == "Install Python 3.11, then run"
    assert new[result.anchor["start"]:result.anchor["end"]] == result.anchor["quote"]
    assert result.anchor["originalQuote"] == "Install Python, then run"


def test_a_deleted_passage_is_orphaned_and_keeps_its_quote():
    old = "Keep this.\n\nConfigure the database carefully.\n\nAnd this.\n"
    new = "Keep this.\n\nAnd this.\n"
    anchor = anchor_on(old, "Configure the database carefully.")
    result = relocate(anchor, new, old_content=old)
    assert (result.state, result.confidence) == (ORPHANED, 0.0)
    assert result.anchor["quote"] == "Configure the database carefully."


def test_a_passage_rewritten_beyond_recognition_is_orphaned():
    old = "Head.\n\nThe quick brown fox jumps over the lazy dog.\n"
    new = "Head.\n\nCompletely different words live here now.\n"
    assert relocate(anchor_on(old, "The quick brown fox"), new, old_content=old).state == ORPHANED


def test_a_passage_moved_elsewhere_unchanged_is_found_by_its_quote():
    old = "First paragraph.\n\nSecond paragraph with the passage.\n\nThird.\n"
    new = "Second paragraph with the passage.\n\nFirst paragraph.\n\nThird.\n"
    result = relocate(anchor_on(old, "with the passage"), new, old_content=old)
    assert result.state == MOVED and result.confidence == 1.0
    assert new[result.anchor["start"]:result.anchor["end"]] == "with the passage"


def test_long_quotes_are_matched_approximately_too():
    sentence = "This sentence is considerably longer than the thirty-two characters diff-match-patch matches."
    old = f"Start.\n\n{sentence}\n\nEnd.\n"
    new = old.replace("considerably", "much")
    result = relocate(anchor_on(old, sentence), new, old_content=old)
    assert result.state == MOVED and result.confidence >= 0.8
    assert result.anchor["quote"] == sentence.replace("considerably", "much")


# --- re-anchoring on edits (services, events) --------------------------------------------


def test_an_edit_that_moves_a_passage_keeps_its_comment_moved_and_correctly_placed(
        document, reviewer, django_capture_on_commit_callbacks):
    comment = comment_on(document, reviewer, "Configure the database.")
    untouched = comment_on(document, reviewer, "# Setup")
    before = last_seq(document)
    # The passage moves below a new section; the text near the heading stays.
    new = DOC_CONTENT.replace("Configure the database.\n", "") + "## Later\n\nFirst, configure the database.\n"
    new = new.replace("configure the database.", "Configure the database.")
    with django_capture_on_commit_callbacks(execute=True):
        services.document_update(document=document, content=new)
    comment.refresh_from_db()
    untouched.refresh_from_db()
    assert comment.anchor["state"] == MOVED and comment.anchor["confidence"] == 1.0
    assert placed(comment, new) == "Configure the database."
    assert untouched.anchor["state"] == EXACT and placed(untouched, new) == "# Setup"
    types = [t for t, _ in events_of(document, before)]
    assert types[0] == "document.updated"
    updated = [data for t, data in events_of(document, before) if t == "comment.updated"]
    assert [data["id"] for data in updated] == [comment.pk]
    assert updated[0]["anchor"] == comment.anchor


def test_an_edit_that_deletes_a_passage_orphans_its_comment(document, reviewer):
    comment = comment_on(document, reviewer, "Configure the database.")
    before = last_seq(document)
    services.document_update(document=document, content=DOC_CONTENT.replace("Configure the database.\n", ""))
    comment.refresh_from_db()
    assert comment.anchor["state"] == ORPHANED and comment.anchor["confidence"] == 0.0
    assert comment.anchor["quote"] == "Configure the database."
    events = events_of(document, before)
    assert [t for t, _ in events] == ["document.updated", "comment.updated"]
    assert events[1][1]["anchor"]["state"] == ORPHANED


def test_an_orphaned_comment_comes_back_when_its_text_does(document, reviewer):
    comment = comment_on(document, reviewer, "Configure the database.")
    services.document_update(document=document, content=DOC_CONTENT.replace("Configure the database.\n", ""))
    services.document_update(document=document, content=DOC_CONTENT)
    comment.refresh_from_db()
    assert comment.anchor["state"] in (EXACT, MOVED) and placed(comment, DOC_CONTENT) == "Configure the database."


def test_an_edit_elsewhere_emits_nothing_for_an_unmoved_comment(document, reviewer):
    comment_on(document, reviewer, "# Setup")
    before = last_seq(document)
    services.document_update(document=document, content=DOC_CONTENT + "\nAppendix.\n")
    assert [t for t, _ in events_of(document, before)] == ["document.updated"]


def test_a_quote_only_anchor_is_placed_at_creation(document, reviewer):
    comment = services.comment_create(author=reviewer, document=document, body="b",
                                      anchor={"quote": "Configure"})
    assert comment.anchor["start"] == DOC_CONTENT.index("Configure") and comment.anchor["state"] == EXACT


def test_closed_comments_are_not_moved_but_are_placed_again_when_reopened(document, reviewer, maintainer):
    comment = comment_on(document, reviewer, "Configure the database.")
    services.comment_update(comment=comment, resolved=True)
    new = "Intro.\n\n" + DOC_CONTENT
    before = last_seq(document)
    services.document_update(document=document, content=new)
    assert [t for t, _ in events_of(document, before)] == ["document.updated"]
    comment = services.comment_update(comment=comment, resolved=False)
    assert comment.anchor["state"] == MOVED and placed(comment, new) == "Configure the database."
    [(kind, data)] = events_of(document, before + 1)
    assert kind == "comment.updated" and data["resolved"] is False and data["anchor"] == comment.anchor


def test_a_moved_suggestion_stays_open_and_an_edited_one_becomes_outdated(document, reviewer):
    moved = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                       anchor=anchor_on(DOC_CONTENT, "Configure"))
    edited = services.suggestion_create(author=reviewer, document=document, replacement="Python 3",
                                        anchor=anchor_on(DOC_CONTENT, "Python"))
    before = last_seq(document)
    new = "Intro.\n\n" + DOC_CONTENT.replace("Python", "Ruby")
    services.document_update(document=document, content=new)
    moved.refresh_from_db()
    edited.refresh_from_db()
    assert moved.status == SuggestionStatus.OPEN and moved.anchor["state"] == MOVED
    assert new[moved.anchor["start"]:moved.anchor["end"]] == "Configure"
    assert edited.status == SuggestionStatus.OUTDATED
    updated = {data["id"]: data["status"] for t, data in events_of(document, before) if t == "suggestion.updated"}
    assert updated == {moved.pk: "open", edited.pk: "outdated"}


# --- approving across edits ------------------------------------------------------------------


def test_approve_after_the_passage_moved_applies_at_its_new_place(document, reviewer):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor=anchor_on(DOC_CONTENT, "Configure"))
    services.document_update(document=document, content="New intro.\n\n" + DOC_CONTENT)
    result = services.suggestion_approve(suggestion=suggestion, expected_version=2)
    assert result.applied
    document.refresh_from_db()
    assert document.content == "New intro.\n\n" + DOC_CONTENT.replace("Configure", "Set up")
    assert document.version == 3


def test_an_ambiguous_quote_is_outdated_not_guessed(document, reviewer):
    content = "Use it.\n\nUse it.\n"
    services.document_update(document=document, content=content)
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Try it",
                                            anchor={"quote": "Use it", "start": 0, "end": 6})
    # Rewriting the whole text makes the quote's position and context useless.
    Suggestion.objects.filter(pk=suggestion.pk).update(anchor={"quote": "Use it", "start": 40, "end": 46})
    result = services.suggestion_approve(suggestion=Suggestion.objects.get(pk=suggestion.pk))
    assert not result.applied and result.reason == "outdated"
    assert Suggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.OUTDATED
    document.refresh_from_db()
    assert document.content == content


def test_approving_twice_is_already_applied(document, reviewer):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor=anchor_on(DOC_CONTENT, "Configure"))
    assert services.suggestion_approve(suggestion=suggestion).applied
    again = services.suggestion_approve(suggestion=suggestion)
    assert not again.applied and again.reason == "already_applied"
    document.refresh_from_db()
    assert document.content.count("Set up") == 1 and document.version == 2


def test_a_suggestion_applied_by_hand_is_already_applied(document, reviewer, maintainer):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor=anchor_on(DOC_CONTENT, "Configure"))
    services.document_update(document=document, content=DOC_CONTENT.replace("Configure", "Set up"))
    result = services.suggestion_approve(suggestion=suggestion)
    assert not result.applied and result.reason == "already_applied"
    assert Suggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.OUTDATED


def test_a_replacement_equal_to_the_quote_is_no_change_and_stays_open(document, reviewer):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Configure",
                                            anchor=anchor_on(DOC_CONTENT, "Configure"))
    result = services.suggestion_approve(suggestion=suggestion)
    assert not result.applied and result.reason == "no_change"
    assert Suggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.OPEN


def test_a_stale_if_match_is_refused_without_touching_the_suggestion(document, reviewer):
    suggestion = services.suggestion_create(author=reviewer, document=document, replacement="Set up",
                                            anchor=anchor_on(DOC_CONTENT, "Configure"))
    services.document_update(document=document, content=DOC_CONTENT + "More.\n")
    before = last_seq(document)
    result = services.suggestion_approve(suggestion=suggestion, expected_version=1)
    assert not result.applied and result.reason == "outdated"
    assert Suggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.OPEN
    assert last_seq(document) == before


def test_api_approve_answers_409_with_each_reason(api, document, reviewer, maintainer):
    def suggest(quote, replacement):
        return api(reviewer).post("/api/suggestions/", {"docPath": document.path, "replacement": replacement,
                                                       "anchor": anchor_on(DOC_CONTENT, quote)},
                                  format="json").json()["id"]

    same = suggest("Configure", "Configure")
    gone = suggest("Python", "Ruby")
    first = suggest("Setup", "Installation")
    approve = lambda pk, **kw: api(maintainer).post(f"/api/suggestions/{pk}/approve/", **kw)
    assert approve(same).json() == {"detail": "no_change"}
    assert approve(first, HTTP_IF_MATCH='"1"').status_code == 200
    twice = approve(first, HTTP_IF_MATCH="2")
    assert twice.status_code == 409 and twice.json() == {"detail": "already_applied"}
    services.document_update(document=document, content=document.content.replace("Python", "Go"))
    outdated = approve(gone)
    assert outdated.status_code == 409 and outdated.json() == {"detail": "outdated"}
    assert api(maintainer).get(f"/api/suggestions/{gone}/").json()["status"] == "outdated"


def test_approving_a_suggestion_that_would_outgrow_the_content_limit_is_409_and_changes_nothing(
        api, document, reviewer, maintainer):
    full = DOC_CONTENT + "x" * (1_000_000 - len(DOC_CONTENT))
    services.document_update(document=document, content=full)
    pk = api(reviewer).post("/api/suggestions/", {"docPath": document.path, "replacement": "Install Python 3.12",
                                                 "anchor": anchor_on(full, "Install Python")},
                            format="json").json()["id"]
    before = last_seq(document)
    response = api(maintainer).post(f"/api/suggestions/{pk}/approve/")
    assert response.status_code == 409 and response.json() == {"detail": "too_long"}
    document.refresh_from_db()
    assert document.content == full and len(document.content) == 1_000_000
    assert Suggestion.objects.get(pk=pk).status == SuggestionStatus.OPEN
    assert last_seq(document) == before
    # One that keeps the document within the limit still applies.
    shorter = api(reviewer).post("/api/suggestions/", {"docPath": document.path, "replacement": "Get Python",
                                                      "anchor": anchor_on(full, "Install Python")},
                                 format="json").json()["id"]
    assert api(maintainer).post(f"/api/suggestions/{shorter}/approve/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_approvals_racing_on_the_same_version_one_wins_one_gets_409(document, reviewer, maintainer, api):
    """Two maintainers approve different suggestions, both against version 1, at once."""
    ids = []
    for quote, replacement in (("Python", "Python 3.11"), ("Configure", "Set up")):
        response = api(reviewer).post("/api/suggestions/", {"docPath": document.path, "replacement": replacement,
                                                           "anchor": anchor_on(DOC_CONTENT, quote)}, format="json")
        ids.append(response.json()["id"])
    start = threading.Barrier(2)
    answers: dict[int, tuple[int, dict]] = {}

    def approve(pk: int) -> None:
        client = api(maintainer)
        start.wait()
        try:
            response = client.post(f"/api/suggestions/{pk}/approve/", HTTP_IF_MATCH="1")
            answers[pk] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(pk,)) for pk in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(status for status, _ in answers.values())
    assert statuses == [200, 409], answers
    loser = next(pk for pk, (status, _) in answers.items() if status == 409)
    assert answers[loser][1] == {"detail": "outdated"}
    document.refresh_from_db()
    assert document.version == 2
    assert ("Python 3.11" in document.content) != ("Set up" in document.content)
    assert Suggestion.objects.get(pk=loser).status == SuggestionStatus.OPEN  # may be approved at version 2
