"""Idempotency-Key in process: replays, session clients with CSRF, bad keys."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from realtime.models import Event, IdempotencyKey
from reviews.models import Comment

pytestmark = pytest.mark.django_db


def test_session_client_with_csrf_and_a_key_writes_once_and_replays(document, reviewer):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(reviewer)
    token = client.get("/accounts/login/").cookies["csrftoken"].value
    headers = {"HTTP_X_CSRFTOKEN": token, "HTTP_IDEMPOTENCY_KEY": "tab-1-comment-1"}
    first = client.post("/api/comments/", {"docPath": document.path, "body": "once"}, format="json", **headers)
    assert first.status_code == 201
    again = client.post("/api/comments/", {"docPath": document.path, "body": "once"}, format="json", **headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Comment.objects.count() == 1 and Event.objects.count() == 1


def test_a_failed_validation_is_replayed_too_and_bad_keys_are_400(api, document, reviewer):
    client = api(reviewer)
    bad = client.post("/api/comments/", {"docPath": document.path, "body": ""}, format="json",
                      HTTP_IDEMPOTENCY_KEY="k1")
    assert bad.status_code == 400
    assert client.post("/api/comments/", {"docPath": document.path, "body": ""}, format="json",
                       HTTP_IDEMPOTENCY_KEY="k1").json() == bad.json()
    too_long = client.post("/api/comments/", {"docPath": document.path, "body": "x"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert too_long.status_code == 400 and not Comment.objects.exists()


def test_keys_are_per_user(api, document, reviewer, maintainer):
    for user in (reviewer, maintainer):
        assert api(user).post("/api/comments/", {"docPath": document.path, "body": "same key"}, format="json",
                              HTTP_IDEMPOTENCY_KEY="shared").status_code == 201
    assert Comment.objects.count() == 2 and IdempotencyKey.objects.count() == 2


def test_a_rate_limited_attempt_is_not_remembered(api, document, reviewer, settings):
    settings.WRITE_RATE_BURST = 1
    settings.WRITE_RATE_PER_SECOND = 0.001
    client = api(reviewer)
    assert client.post("/api/comments/", {"docPath": document.path, "body": "a"}, format="json").status_code == 201
    limited = client.post("/api/comments/", {"docPath": document.path, "body": "b"}, format="json",
                          HTTP_IDEMPOTENCY_KEY="retry-me")
    assert limited.status_code == 429 and "Retry-After" in limited
    assert not IdempotencyKey.objects.filter(key="retry-me").exists()


def test_a_replayed_delete_is_the_same_bodiless_204(api, document, reviewer):
    client = api(reviewer)
    comment = client.post("/api/comments/", {"docPath": document.path, "body": "gone soon"}, format="json").json()
    first = client.delete(f"/api/comments/{comment['id']}/", HTTP_IDEMPOTENCY_KEY="del-1")
    again = client.delete(f"/api/comments/{comment['id']}/", HTTP_IDEMPOTENCY_KEY="del-1")
    assert first.status_code == again.status_code == 204
    assert again["Idempotent-Replayed"] == "true" and again.content == b""
    assert "Content-Type" not in first and "Content-Type" not in again
