"""Deployment checks, security headers, /healthz and /metrics."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from realtime.checks import stream_deployment_checks
from tests.support.server import ROOT

pytestmark = pytest.mark.django_db


def test_check_deploy_is_clean_with_production_values():
    env = {
        "PATH": os.environ["PATH"],
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "review.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://review.example.com",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_SSL_REDIRECT": "1",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_with_debug_off_refuses_to_start():
    env = {"PATH": os.environ["PATH"], "DEBUG": "0"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_custom_checks_warn_about_unchecked_persistent_connections_and_workers_without_redis(settings,
                                                                                            monkeypatch):
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"], "CONN_MAX_AGE": 60,
                                                            "CONN_HEALTH_CHECKS": False}}
    settings.REDIS_URL = ""
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    ids = {warning.id for warning in stream_deployment_checks(None)}
    assert ids >= {"realtime.W001", "realtime.W002"}
    settings.DATABASES = {**settings.DATABASES, "default": {**settings.DATABASES["default"], "CONN_MAX_AGE": 60,
                                                            "CONN_HEALTH_CHECKS": True}}
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert not {w.id for w in stream_deployment_checks(None)} & {"realtime.W001", "realtime.W002"}


def test_pages_carry_csp_and_security_headers(client, reviewer):
    client.force_login(reviewer)
    response = client.get("/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_healthz_reports_db_and_layer(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"db": "ok", "layer": "ok"}


def test_metrics_need_staff_or_the_bearer_token(client, settings, reviewer, django_user_model):
    settings.METRICS_TOKEN = "s3cret-token"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrông").status_code == 404
    client.force_login(reviewer)
    assert client.get("/metrics").status_code == 404
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 200
    text = response.content.decode()
    for name in ("docreview_streams_open", "docreview_events_published_total", "docreview_events_delivered_total",
                 "docreview_delivery_latency_seconds_bucket", "docreview_stream_disconnects_total",
                 "docreview_events_replayed_total", "docreview_fallback_mode", "docreview_publish_failures_total",
                 "docreview_process_resident_memory_bytes"):
        assert name in text, name
    staff = django_user_model.objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200
