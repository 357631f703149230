"""A real server process (daphne or uvicorn) on 127.0.0.1, against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from .waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_env() -> dict[str, str]:
    """Environment that points a server process at the database the tests use."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(settings_dict["NAME"])}
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else f"{user}@"
    return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"}


class ServerProcess:
    """Start, stop, kill and restart one server process; output goes to a log file."""

    def __init__(self, *, env: dict[str, str] | None = None, server: str = "daphne", port: int | None = None,
                 log_dir: Path | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.server = server
        self.tls = tls  # (private key, certificate): serve HTTPS
        self.port = port or free_port()
        self.env = {
            **os.environ,
            "DEBUG": "0",
            "SECRET_KEY": os.environ.get("SECRET_KEY", "test-secret-key"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "SSE_HEARTBEAT_SECONDS": "1",
            # Live delivery must come through the channel layer, not the
            # periodic resync: tests that exercise the resync set it lower.
            "SSE_RESYNC_SECONDS": "600",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **database_env(),
            **(env or {}),
        }
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"docreview-{self.server}-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.server == "uvicorn":
            tls = ["--ssl-keyfile", str(self.tls[0]), "--ssl-certfile", str(self.tls[1])] if self.tls else []
            return [sys.executable, "-m", "uvicorn", "docreview.asgi:application", "--host", "127.0.0.1",
                    "--port", str(self.port), "--no-access-log", "--timeout-graceful-shutdown", "5", *tls]
        if self.tls:
            endpoint = f"ssl:port={self.port}:interface=127.0.0.1:privateKey={self.tls[0]}:certKey={self.tls[1]}"
            return [sys.executable, "-m", "daphne", "-e", endpoint, "-v", "1", "docreview.asgi:application"]
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "-v", "1",
                "docreview.asgi:application"]

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; log:\n{self.log()}")
            try:
                return httpx.get(self.base_url + "/healthz", timeout=1, verify=False).status_code in (200, 503)
            except httpx.HTTPError:
                return False

        wait_for(up, timeout=timeout, interval=0.05, message=f"{self.server} on port {self.port}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a machine dies."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def restart(self) -> "ServerProcess":
        self.kill()
        return self.start()
