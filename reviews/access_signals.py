"""Taking access away closes the affected event streams, on every process.

A membership removed or changed, a document made private, a user deactivated,
logged out or given a new password, an API token deleted, a document deleted: the streams opened before are closed
(``realtime.publish.revoke_on_commit``), their clients reconnect at once and
are checked again.  One who may still read resumes by Last-Event-ID with
nothing lost (a changed role may change what they see); one who may not gets
404 or 401.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from rest_framework.authtoken.models import Token

from realtime.publish import revoke_on_commit

from .models import Document, Membership, Visibility

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
        old = User.objects.filter(pk=instance.pk).values("password", "is_active", "is_staff").first()
        instance._access_changed = old is not None and (
            old["password"] != instance.password
            or (old["is_active"] and not instance.is_active)
            or (old["is_staff"] and not instance.is_staff)
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
