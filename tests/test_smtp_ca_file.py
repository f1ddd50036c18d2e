"""A mail relay whose certificate comes from a private CA is trusted through VEILLE_SMTP_CA_FILE.

The relay is a real aiosmtpd server on 127.0.0.1 speaking implicit TLS (port-465 style) or
STARTTLS (port-587 style), presenting a certificate for localhost and 127.0.0.1 signed by a
throwaway CA made in the test with ``cryptography``.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.smtp_server import SmtpServer
from veille.core.config import ConfigError
from veille.core.mailer import MailError, SmtpSettings, send_email


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=2))
    )


@dataclass(frozen=True)
class PrivateCa:
    """A throwaway internal CA: its PEM file, and server certificates it signs."""

    ca_file: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, folder: Path) -> PrivateCa:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("Veille test internal CA")
        cert = (
            _builder("Veille test internal CA", name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        ca_file = folder / "internal-ca.pem"
        ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(ca_file=ca_file, key=key, cert=cert)

    def server_context(self, folder: Path, *names: str) -> ssl.SSLContext:
        """A server TLS context presenting a certificate for ``names`` (host names or IPs)."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        cert = (
            _builder(names[0], self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = folder / f"{names[0]}.pem", folder / f"{names[0]}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory) -> PrivateCa:
    return PrivateCa.create(tmp_path_factory.mktemp("private-ca"))


class TlsSmtpServer(SmtpServer):
    """The shared test SMTP server, speaking implicit TLS (``ssl``) or STARTTLS with ``context``."""

    def __init__(self, context: ssl.SSLContext, mode: str) -> None:
        super().__init__()
        self.context = context
        self.mode = mode

    def start(self) -> None:
        if self.mode == "ssl":
            self.controller = Controller(
                self.handler, hostname="127.0.0.1", port=self.port, ssl_context=self.context
            )
        else:
            self.controller = Controller(
                self.handler,
                hostname="127.0.0.1",
                port=self.port,
                tls_context=self.context,
                require_starttls=True,
            )
        self.controller.start()

    def env(self) -> dict[str, str]:
        flag = "VEILLE_SMTP_SSL" if self.mode == "ssl" else "VEILLE_SMTP_STARTTLS"
        return {**super().env(), flag: "true"}


@pytest.fixture
def smtp_env(monkeypatch) -> None:
    """No ``VEILLE_SMTP_*`` from the surrounding shell."""
    for name in list(os.environ):
        if name.startswith("VEILLE_SMTP_"):
            monkeypatch.delenv(name)


@pytest.fixture(params=["ssl", "starttls"])
def relay(request, private_ca, tmp_path, smtp_env, monkeypatch) -> Iterator[TlsSmtpServer]:
    """A relay whose certificate names localhost and 127.0.0.1, the host we connect to."""
    context = private_ca.server_context(tmp_path, "localhost", "127.0.0.1")
    with TlsSmtpServer(context, request.param) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


def _notice(subject: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = "analyst@example.org"
    message["Subject"] = subject
    message.set_content("Source le-devoir has been quiet for 3 days.")
    return message


def test_relay_signed_by_a_private_ca_is_refused_without_the_ca_file(relay):
    with pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
        send_email(_notice("Source quiet: le-devoir"))
    assert relay.messages == []


def test_ca_file_makes_the_private_relay_trusted_and_the_email_arrives(
    relay, private_ca, monkeypatch
):
    monkeypatch.setenv("VEILLE_SMTP_CA_FILE", str(private_ca.ca_file))
    send_email(_notice("Source quiet: le-devoir"))
    assert [message["Subject"] for message in relay.messages] == ["Source quiet: le-devoir"]


def test_ca_file_still_refuses_a_certificate_for_another_host(
    private_ca, tmp_path, smtp_env, monkeypatch
):
    context = private_ca.server_context(tmp_path, "mail.internal.example")
    with TlsSmtpServer(context, "starttls") as relay:
        for name, value in relay.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("VEILLE_SMTP_CA_FILE", str(private_ca.ca_file))
        with pytest.raises(MailError, match="IP address mismatch"):
            send_email(_notice("Source quiet: le-devoir"))
        assert relay.messages == []


def test_missing_ca_file_is_a_config_error_naming_the_key_and_path(tmp_path, smtp_env, monkeypatch):
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("VEILLE_SMTP_CA_FILE", str(missing))
    with pytest.raises(ConfigError, match="VEILLE_SMTP_CA_FILE") as refused:
        SmtpSettings.from_env()
    assert str(missing) in str(refused.value)
    assert "PEM" in refused.value.hint


def test_a_file_that_is_not_a_pem_bundle_is_a_config_error(tmp_path, smtp_env, monkeypatch):
    not_pem = tmp_path / "relay-ca.der"
    not_pem.write_bytes(b"\x30\x82\x01\x0a not a certificate")
    monkeypatch.setenv("VEILLE_SMTP_CA_FILE", str(not_pem))
    with pytest.raises(ConfigError, match="not a readable PEM CA bundle") as refused:
        SmtpSettings.from_env()
    assert refused.value.key == "VEILLE_SMTP_CA_FILE"
    assert str(not_pem) in str(refused.value)
