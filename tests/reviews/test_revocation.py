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


def test_losing_the_moderation_permission_directly_revokes_the_moderator(moderator, reviewer):
    from django.contrib.auth.models import Permission

    moderate = Permission.objects.get(codename="moderate_content")
    other = Permission.objects.exclude(pk=moderate.pk).first()
    reviewer.user_permissions.add(other)
    reviewer.user_permissions.remove(other)  # not the moderation permission: nothing to close
    assert revoked() == []
    moderator.user_permissions.remove(moderate)
    assert revoked() == [(moderator.pk, "")]
    moderator.user_permissions.add(moderate)
    moderator.user_permissions.clear()
    moderate.user_set.add(moderator)
    moderate.user_set.remove(moderator)
    assert revoked() == [(moderator.pk, "")] * 3


def test_losing_the_moderation_permission_through_a_group_revokes_its_members(maintainer, reviewer):
    from django.contrib.auth.models import Group, Permission

    moderate = Permission.objects.get(codename="moderate_content")
    plain = Group.objects.create(name="readers")
    plain.user_set.add(reviewer)
    plain.user_set.remove(reviewer)  # a group without the permission: nothing to close
    mods = Group.objects.create(name="moderators")
    mods.permissions.add(moderate)
    mods.user_set.add(maintainer, reviewer)

    mods.permissions.remove(moderate)  # the group loses the permission
    assert sorted(revoked()) == [(maintainer.pk, ""), (reviewer.pk, "")]
    mods.permissions.add(moderate)
    reviewer.groups.remove(mods)  # a member leaves the group
    mods.user_set.remove(maintainer)
    assert sorted(revoked()[2:]) == [(maintainer.pk, ""), (reviewer.pk, "")]
    mods.user_set.add(reviewer)
    mods.delete()  # the group is deleted
    assert revoked()[4:] == [(reviewer.pk, "")]


def test_losing_superuser_status_revokes(outsider):
    outsider.is_superuser = True
    outsider.save()
    assert revoked() == []
    outsider.is_superuser = False
    outsider.save()
    assert revoked() == [(outsider.pk, "")]
