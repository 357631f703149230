"""Over HTTPS the live frames stay inside TLS: the fan-out writes straight to a
connection only when it is plain TCP (under daphne a TLS wrapper forwards
attribute lookups to the socket beneath it, so it must be told apart)."""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import time

import httpx
import pytest

from tests.conftest import token_for

pytestmark = [pytest.mark.e2e]
PATH = "guides/setup.md"


def self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.mark.parametrize("server_name", ["daphne", "uvicorn"])
def test_live_events_arrive_intact_over_https(server, document, viewer, maintainer, tmp_path, server_name):
    key, cert = self_signed(tmp_path)
    # Bursts of writes from one user, so that batches are coalesced too.
    srv = server(server=server_name, tls=(key, cert),
                 env={"WRITE_RATE_PER_SECOND": "1000", "WRITE_RATE_BURST": "1000"})
    context = ssl.create_default_context(cafile=str(cert))
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    stream = context.wrap_socket(raw, server_hostname="localhost")
    try:
        stream.sendall((f"GET /api/events?docPath={PATH} HTTP/1.1\r\nHost: localhost\r\n"
                        f"Authorization: Token {token_for(viewer)}\r\nAccept: text/event-stream\r\n\r\n").encode())
        received = b""
        while b"event: user.presence" not in received:  # the replay and presence are sent: the stream is live
            received += stream.recv(65536)
        assert received.startswith(b"HTTP/1.1 200")
        with httpx.Client(base_url=srv.base_url, verify=context, timeout=10) as client:
            for i in range(30):
                response = client.post("/api/comments/", json={"docPath": PATH, "body": f"over tls {i}"},
                                       headers={"Authorization": f"Token {token_for(maintainer)}"})
                assert response.status_code == 201, response.text
                if i % 10 == 9:
                    time.sleep(0.3)  # batches of a few events, as a busy document sends them
        deadline = time.monotonic() + 15
        while received.count(b"over tls ") < 30 and time.monotonic() < deadline:
            received += stream.recv(65536)  # an SSLError here: bytes written around TLS
        ids = [int(i) for i in re.findall(rb"^id: (\d+)\r?$", received, re.M)]
        assert received.count(b"over tls ") == 30
        assert ids == list(range(ids[0], ids[0] + len(ids))) and len(ids) >= 30
    finally:
        stream.close()
