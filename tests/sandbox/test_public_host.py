"""``up --public-host NAME``: the emulators are reached by another name (a compose service), so the
env file's URLs use it and the server certificate carries it."""

from __future__ import annotations

import socket
from pathlib import Path

from cryptography import x509

from include.sandbox.core.server import url_of
from include.sandbox.core.tls import ensure_tls


def test_urls_use_the_public_host_and_loopback_otherwise() -> None:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
        assert url_of(sock, "sandbox") == f"https://sandbox:{port}"
        assert url_of(sock) == f"https://127.0.0.1:{port}"


def test_the_certificate_names_the_public_host_besides_loopback(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path, extra_names=("sandbox",))
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"sandbox", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
