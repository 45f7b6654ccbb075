"""The sandbox CA: clients verify the emulators' certificate through the CA bundle alone."""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509

from include.sandbox.core.tls import ensure_tls


def test_server_certificate_chains_to_the_ca_and_names_loopback(tmp_path: Path) -> None:
    files = ensure_tls(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_bundle.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    context = ssl.create_default_context(cafile=str(files.ca_bundle))
    context.load_cert_chain(files.server_cert, files.server_key)  # key matches certificate


def test_ca_is_kept_across_restarts_so_configured_clients_keep_working(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path).ca_bundle.read_bytes()
    second = ensure_tls(tmp_path).ca_bundle.read_bytes()
    assert first == second
    assert (tmp_path / "ca-key.pem").stat().st_mode & 0o777 == 0o600
