"""Exit 0 when PostgreSQL and Redis answer on 127.0.0.1 (used by `make test`)."""

import socket
import sys


def up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


sys.exit(0 if up(5432) and up(6379) else 1)
