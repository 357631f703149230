"""Prepare a fresh benchmark database: migrate, then users, documents, tokens.

Run by ``bench/run.py`` with the server's environment (``SQLITE_PATH`` of a new
file, or ``DATABASE_URL`` of a new database), so it sees exactly what the
server will see.  Prints one JSON object on stdout.

Writers are reviewers (they POST comments), readers are viewers (they hold the
streams).  Documents are created through ``reviews.services`` as any other
document is; users and tokens in bulk, because a password is never used:
streams and writes authenticate with DRF tokens.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "docreview.settings")

CONTENT = "# Benchmark document\n\nEvery comment on this page is written by bench/run.py.\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--readers", type=int, required=True)
    parser.add_argument("--writers", type=int, required=True)
    parser.add_argument("--slow", type=int, default=0)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from realtime import log
    from reviews import services
    from reviews.models import Role

    call_command("migrate", verbosity=0, interactive=False)
    User = get_user_model()

    def users(prefix: str, count: int) -> list:
        User.objects.bulk_create([User(username=f"{prefix}{i:04d}", password="!bench") for i in range(count)])
        made = list(User.objects.filter(username__startswith=prefix).order_by("username"))
        Token.objects.bulk_create([Token(user=user, key=Token.generate_key()) for user in made])
        return made

    owner = users("bench-owner", 1)[0]
    writers = users("bench-w", args.writers)
    readers = users("bench-r", args.readers)
    slow = users("bench-slow", args.slow)
    tokens = dict(Token.objects.values_list("user_id", "key"))

    docs = []
    for d in range(args.docs):
        path = f"bench/doc-{d:03d}.md"
        document = services.document_create(user=owner, path=path, title=f"Bench {d}", content=CONTENT)
        with transaction.atomic():  # one commit, not one per member
            for user in writers:
                services.member_set(document=document, user=user, role=Role.REVIEWER)
            for user in readers + slow:
                services.member_set(document=document, user=user, role=Role.VIEWER)
        docs.append({"path": path, "last_id": log.last_id(path)})

    json.dump({
        "docs": docs,
        "writers": [{"username": u.username, "token": tokens[u.pk]} for u in writers],
        "readers": [{"username": u.username, "token": tokens[u.pk]} for u in readers],
        "slow": [{"username": u.username, "token": tokens[u.pk]} for u in slow],
    }, sys.stdout)


if __name__ == "__main__":
    main()
