"""The cached CSP headers are exactly django-csp's, and anything that changes
a response's policy still goes through django-csp."""

from __future__ import annotations

import pytest
from csp.constants import NONCE
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from docreview.middleware import CSPMiddleware

HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report/"}}


def _headers(middleware_class, path="/", status=200, prepare=None, use_nonce=False):
    request = RequestFactory().get(path)
    middleware = middleware_class(lambda request: None)
    middleware.process_request(request)
    nonce = str(request.csp_nonce) if use_nonce else None
    response = HttpResponse(status=status)
    if prepare:
        prepare(response)
    middleware.process_response(request, response)
    return {name: response.get(name) for name in HEADERS}, request, nonce


def _both(**kwargs):
    ours, _, _ = _headers(CSPMiddleware, **kwargs)
    theirs, _, _ = _headers(DjangoCSPMiddleware, **kwargs)
    return ours, theirs


def _same_directives(a, b):
    # django-csp joins directives in set order, which varies between processes.
    split = (lambda header: None if header is None else sorted(header.split("; ")))
    return all(split(a[name]) == split(b[name]) for name in HEADERS)


def test_plain_response_gets_django_csp_headers():
    ours, theirs = _both()
    assert ours["Content-Security-Policy"] and _same_directives(ours, theirs)
    assert ours["Content-Security-Policy-Report-Only"] is None


def test_settings_changes_are_picked_up():
    with override_settings(CONTENT_SECURITY_POLICY_REPORT_ONLY=REPORT_ONLY):
        ours, theirs = _both()
        assert ours["Content-Security-Policy-Report-Only"] and _same_directives(ours, theirs)
        assert "report-uri /csp-report/" in ours["Content-Security-Policy-Report-Only"]
    with override_settings(CONTENT_SECURITY_POLICY=None):
        ours, theirs = _both()
        assert ours == theirs == {name: None for name in HEADERS}
    ours, _ = _both()
    assert ours["Content-Security-Policy"]


def test_excluded_prefix_existing_header_and_debug_pages_are_left_alone():
    ours, theirs = _both(path="/admin/login/")
    assert ours == theirs == {name: None for name in HEADERS}

    def preset(response):
        response["Content-Security-Policy"] = "default-src 'none'"

    ours, theirs = _both(prepare=preset)
    assert ours == theirs and ours["Content-Security-Policy"] == "default-src 'none'"
    with override_settings(DEBUG=True):
        ours, theirs = _both(status=404)
        assert ours == theirs == {name: None for name in HEADERS}


@pytest.mark.parametrize("attribute, value, expected", [
    ("_csp_update", {"img-src": ["https://images.example"]}, "https://images.example"),
    ("_csp_replace", {"script-src": ["https://cdn.example"]}, "script-src https://cdn.example"),
    ("_csp_config", {"default-src": ["'none'"]}, "default-src 'none'"),
])
def test_a_response_with_its_own_policy_goes_through_django_csp(attribute, value, expected):
    ours, theirs = _both(prepare=lambda response: setattr(response, attribute, value))
    assert expected in ours["Content-Security-Policy"] and _same_directives(ours, theirs)


def test_exempt_response_gets_no_header():
    ours, theirs = _both(prepare=lambda response: setattr(response, "_csp_exempt", True))
    assert ours["Content-Security-Policy"] is None and ours == theirs


@override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'self'", NONCE]}})
def test_a_used_nonce_is_in_the_header_and_none_can_be_used_after_it():
    headers, request, nonce = _headers(CSPMiddleware, use_nonce=True)
    assert headers["Content-Security-Policy"] == f"default-src 'self'; script-src 'self' 'nonce-{nonce}'" or \
        headers["Content-Security-Policy"] == f"script-src 'self' 'nonce-{nonce}'; default-src 'self'"
    headers, _, _ = _headers(CSPMiddleware)
    assert "nonce" not in headers["Content-Security-Policy"]
    _, request, _ = _headers(CSPMiddleware)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
