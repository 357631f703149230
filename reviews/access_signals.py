"""Taking access away closes the affected event streams, on every process.

A membership removed or changed, a document made private, a user deactivated,
logged out or given a new password, an API token deleted, a document deleted,
a moderator's standing taken away (staff or superuser status, the
``reviews.moderate_content`` permission, directly or through a group, or the
group itself): the streams opened before are closed
(``realtime.publish.revoke_on_commit``), their clients reconnect at once and
are checked again.  One who may still read resumes by Last-Event-ID with
nothing lost (a changed role may change what they see); one who may not gets
404 or 401.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from rest_framework.authtoken.models import Token

from realtime.publish import revoke_on_commit

from .models import Document, Membership, Visibility
from .permissions import MODERATE_PERMISSION

User = get_user_model()


@receiver(post_save, sender=Membership, dispatch_uid="reviews.membership_changed")
def membership_changed(sender, instance: Membership, created: bool, **kwargs) -> None:
    if not created:
        revoke_on_commit(user_id=instance.user_id, key=instance.document.path)


@receiver(post_delete, sender=Membership, dispatch_uid="reviews.membership_removed")
def membership_removed(sender, instance: Membership, **kwargs) -> None:
    revoke_on_commit(user_id=instance.user_id, key=instance.document.path)


@receiver(pre_save, sender=Document, dispatch_uid="reviews.document_visibility_before")
def document_visibility_before(sender, instance: Document, **kwargs) -> None:
    if instance.pk:
        instance._old_visibility = Document.objects.filter(pk=instance.pk).values_list("visibility", flat=True).first()


@receiver(post_save, sender=Document, dispatch_uid="reviews.document_visibility_after")
def document_visibility_after(sender, instance: Document, created: bool, **kwargs) -> None:
    old = getattr(instance, "_old_visibility", None)
    if not created and old == Visibility.INTERNAL and instance.visibility != Visibility.INTERNAL:
        revoke_on_commit(user_id=None, key=instance.path)


@receiver(post_delete, sender=Document, dispatch_uid="reviews.document_deleted")
def document_deleted(sender, instance: Document, **kwargs) -> None:
    """Every stream on a deleted document closes (and reconnects to 404), and
    no process reopens one from access it cached."""
    revoke_on_commit(user_id=None, key=instance.path)


@receiver(pre_save, sender=User, dispatch_uid="reviews.user_access_before")
def user_access_before(sender, instance, **kwargs) -> None:
    if instance.pk:
        old = User.objects.filter(pk=instance.pk).values("password", "is_active", "is_staff", "is_superuser").first()
        instance._access_changed = old is not None and (
            old["password"] != instance.password
            or (old["is_active"] and not instance.is_active)
            or (old["is_staff"] and not instance.is_staff)
            or (old["is_superuser"] and not instance.is_superuser)
        )


@receiver(post_save, sender=User, dispatch_uid="reviews.user_access_after")
def user_access_after(sender, instance, created: bool, **kwargs) -> None:
    if not created and getattr(instance, "_access_changed", False):
        revoke_on_commit(user_id=instance.pk)


@receiver(post_delete, sender=Token, dispatch_uid="reviews.token_deleted")
def token_deleted(sender, instance: Token, **kwargs) -> None:
    """A deleted (or regenerated) API token: the streams it opened close, and
    every process forgets the access it cached for it."""
    revoke_on_commit(user_id=instance.user_id)


@receiver(user_logged_out, dispatch_uid="reviews.user_logged_out")
def user_logged_out_everywhere(sender, request, user, **kwargs) -> None:
    if user is not None:
        from django.db import transaction

        with transaction.atomic():
            revoke_on_commit(user_id=user.pk)


# -- the moderator permission taken away -------------------------------------
# A moderator reads every document and sees hidden content; these receivers
# close the streams of whoever stops being one.  Only removals of the
# moderation permission (or of a group holding it) count: other permission
# changes leave streams alone.

def _moderate_permission() -> Permission | None:
    app_label, codename = MODERATE_PERMISSION.split(".")
    return Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()


def _revoke_users(user_ids) -> None:
    for user_id in set(user_ids):
        revoke_on_commit(user_id=user_id)


def _groups_with(permission: Permission, group_ids=None):
    groups = Group.objects.filter(permissions=permission)
    return groups if group_ids is None else groups.filter(pk__in=group_ids)


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="reviews.user_permissions_changed")
def user_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "pre_clear"):
        return
    permission = _moderate_permission()
    if permission is None:
        return
    if not reverse:  # user.user_permissions.remove(...) / .clear()
        if (action == "post_remove" and permission.pk in pk_set) or (
                action == "pre_clear" and instance.user_permissions.filter(pk=permission.pk).exists()):
            revoke_on_commit(user_id=instance.pk)
    elif instance.pk == permission.pk:  # permission.user_set.remove(...) / .clear()
        _revoke_users(pk_set if action == "post_remove" else instance.user_set.values_list("pk", flat=True))


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="reviews.user_groups_changed")
def user_groups_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "pre_clear"):
        return
    permission = _moderate_permission()
    if permission is None:
        return
    if not reverse:  # user.groups.remove(...) / .clear()
        groups = _groups_with(permission, pk_set if action == "post_remove" else instance.groups.values("pk"))
        if groups.exists():
            revoke_on_commit(user_id=instance.pk)
    elif _groups_with(permission, [instance.pk]).exists():  # group.user_set.remove(...) / .clear()
        _revoke_users(pk_set if action == "post_remove" else instance.user_set.values_list("pk", flat=True))


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="reviews.group_permissions_changed")
def group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_remove", "pre_clear"):
        return
    permission = _moderate_permission()
    if permission is None:
        return
    if not reverse:  # group.permissions.remove(...) / .clear()
        if (action == "post_remove" and permission.pk in pk_set) or (
                action == "pre_clear" and instance.permissions.filter(pk=permission.pk).exists()):
            _revoke_users(instance.user_set.values_list("pk", flat=True))
    elif instance.pk == permission.pk:  # permission.group_set.remove(...) / .clear()
        groups = Group.objects.filter(pk__in=pk_set) if action == "post_remove" else instance.group_set.all()
        _revoke_users(User.objects.filter(groups__in=groups).values_list("pk", flat=True))


@receiver(pre_delete, sender=Group, dispatch_uid="reviews.group_deleted")
def group_deleted(sender, instance: Group, **kwargs) -> None:
    permission = _moderate_permission()
    if permission is not None and instance.permissions.filter(pk=permission.pk).exists():
        _revoke_users(instance.user_set.values_list("pk", flat=True))
