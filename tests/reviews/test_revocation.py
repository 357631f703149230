"""Taking access away records a revocation (closing the affected streams on every process)."""

from __future__ import annotations

import pytest
from django.test import Client

from realtime.models import Revocation
from reviews import services
from reviews.models import Role, Visibility

pytestmark = pytest.mark.django_db


def revoked():
    return list(Revocation.objects.order_by("id").values_list("user_id", "key"))


def test_downgrade_and_removal_revoke_on_the_document(document, reviewer):
    services.member_set(document=document, user=reviewer, role=Role.VIEWER)
    services.member_remove(document=document, user=reviewer)
    assert revoked() == [(reviewer.pk, document.path), (reviewer.pk, document.path)]


def test_adding_a_member_or_setting_the_same_role_revokes_nothing(document, outsider, reviewer):
    services.member_set(document=document, user=outsider, role=Role.VIEWER)
    services.member_set(document=document, user=reviewer, role=Role.REVIEWER)
    assert revoked() == []


def test_deactivation_and_password_change_revoke_everywhere_but_a_login_does_not(reviewer):
    client = Client()
    assert client.login(username="rob", password="rob-pass-123")
    assert revoked() == []
    reviewer.set_password("another-pass-456")
    reviewer.save()
    reviewer.is_active = False
    reviewer.save()
    assert revoked() == [(reviewer.pk, ""), (reviewer.pk, "")]


def test_logout_revokes_the_users_streams(reviewer):
    client = Client()
    client.force_login(reviewer)
    assert client.post("/accounts/logout/").status_code == 302
    assert revoked() == [(reviewer.pk, "")]


def test_making_an_internal_document_private_revokes_everyone_on_it(maintainer):
    doc = services.document_create(user=maintainer, path="handbook/a.md", title="A", visibility=Visibility.INTERNAL)
    services.document_update(document=doc, visibility=Visibility.PRIVATE)
    assert revoked() == [(None, "handbook/a.md")]


def test_deleting_a_document_revokes_every_stream_on_it_and_a_token_its_users(document, reviewer):
    from rest_framework.authtoken.models import Token

    Token.objects.create(user=reviewer).delete()
    path = document.path
    document.delete()
    assert (reviewer.pk, "") in revoked()
    assert (None, path) in revoked()
