"""Demo data: three users with known passwords and two documents with comments."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from reviews import services
from reviews.models import Document, Role, Visibility

USERS = [
    ("maria", "maintainer", "maria-reviews-42"),
    ("rob", "reviewer", "rob-reviews-42"),
    ("vera", "viewer", "vera-reviews-42"),
]

SETUP = """# Setting up doc-review

Install Python 3.11 or newer, then run `make run`.

## Configuration

Every setting comes from the environment. Without `DATABASE_URL` the server
uses SQLite; without `REDIS_URL` it uses the in-memory channel layer.

## Running several processes

Set `REDIS_URL` and `DATABASE_URL`, then start as many server processes as
you have cores.
"""

STYLE = """# Writing style

Short sentences. Active voice. One idea per paragraph.

Use `code` for anything a reader types.
"""


class Command(BaseCommand):
    help = "Create demo users (maria, rob, vera) and two documents. Safe to run twice."

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        users = {}
        created_any = False
        for username, role, password in USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            if created:
                user.set_password(password)
                user.save()
                created_any = True
            users[role] = user
        if not Document.objects.filter(path="guides/setup.md").exists():
            setup = services.document_create(user=users["maintainer"], path="guides/setup.md",
                                             title="Setting up doc-review", content=SETUP)
            services.member_set(document=setup, user=users["reviewer"], role=Role.REVIEWER)
            services.member_set(document=setup, user=users["viewer"], role=Role.VIEWER)
            quote = "run `make run`"
            start = SETUP.index(quote)
            first = services.comment_create(author=users["reviewer"], document=setup,
                                            body="Should we say which Python versions are tested?",
                                            anchor={"quote": quote, "start": start, "end": start + len(quote)})
            services.comment_create(author=users["maintainer"], document=setup, body="Good point, 3.11 and 3.12.",
                                    parent=first)
            services.discussion_create(author=users["maintainer"], document=setup, title="Release checklist")
        if not Document.objects.filter(path="handbook/style.md").exists():
            style = services.document_create(user=users["maintainer"], path="handbook/style.md",
                                             title="Writing style", content=STYLE, visibility=Visibility.INTERNAL)
            services.comment_create(author=users["reviewer"], document=style, body="Add an example paragraph?")
        if created_any:
            self.stdout.write("Demo users (shown once; change them for anything but a demo):")
            for username, role, password in USERS:
                self.stdout.write(f"  {username:6} {role:10} password: {password}")
        else:
            self.stdout.write("Demo data already present.")
