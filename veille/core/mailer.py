"""Sending one email through the operator's SMTP server, configured by the environment only.

In:  an ``email.message.EmailMessage`` (its ``From`` defaults to ``VEILLE_SMTP_FROM``) and the
     ``VEILLE_SMTP_*`` variables: ``HOST`` (default localhost), ``PORT`` (default 465 with SSL,
     587 with STARTTLS, else 25), ``STARTTLS`` or ``SSL`` (booleans), ``USER``, ``PASSWORD``,
     ``FROM`` (default veille@localhost), ``TIMEOUT`` (seconds, default 30), ``CA_FILE`` (a PEM
     CA bundle for a relay whose certificate comes from a private CA).
Out: the message handed to the server, or :class:`MailError` saying what failed and where; a
     ``CA_FILE`` that is missing or not a PEM bundle is a :class:`ConfigError` when read.

TLS certificates are verified against the system's CA store, or against ``CA_FILE`` alone when it
is set; there is no switch to turn verification off.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

from veille.core.config import ConfigError, _flag


class MailError(Exception):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = "veille@localhost"
    timeout: float = 30.0
    ca_file: str | None = None

    @classmethod
    def from_env(cls) -> SmtpSettings:
        use_ssl = _flag("VEILLE_SMTP_SSL", False)
        starttls = _flag("VEILLE_SMTP_STARTTLS", False)
        if use_ssl and starttls:
            raise ConfigError(
                "(environment)", "VEILLE_SMTP_SSL", "SSL and STARTTLS are both on", "choose one"
            )
        default_port = 465 if use_ssl else 587 if starttls else 25
        try:
            port = int(os.environ.get("VEILLE_SMTP_PORT") or default_port)
            timeout = float(os.environ.get("VEILLE_SMTP_TIMEOUT") or cls.timeout)
        except ValueError as exc:
            raise ConfigError(
                "(environment)", "VEILLE_SMTP_PORT/TIMEOUT", str(exc), "use a number"
            ) from exc
        ca_file = os.environ.get("VEILLE_SMTP_CA_FILE") or None
        _tls_context(ca_file)
        return cls(
            host=os.environ.get("VEILLE_SMTP_HOST") or cls.host,
            port=port,
            starttls=starttls,
            ssl=use_ssl,
            user=os.environ.get("VEILLE_SMTP_USER") or None,
            password=os.environ.get("VEILLE_SMTP_PASSWORD") or None,
            sender=os.environ.get("VEILLE_SMTP_FROM") or cls.sender,
            timeout=timeout,
            ca_file=ca_file,
        )


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS context: the system's CA store, or only the PEM bundle ``ca_file``."""
    hint = (
        "point VEILLE_SMTP_CA_FILE at the PEM file of the CA that signed the SMTP server's "
        "certificate, or leave it empty to use the system's CA store"
    )
    if ca_file is not None and not os.path.isfile(ca_file):
        raise ConfigError(
            "(environment)",
            "VEILLE_SMTP_CA_FILE",
            f"{ca_file} does not exist or is not a file",
            hint,
        )
    try:
        return ssl.create_default_context(cafile=ca_file)
    except OSError as exc:
        raise ConfigError(
            "(environment)",
            "VEILLE_SMTP_CA_FILE",
            f"{ca_file} is not a readable PEM CA bundle: {exc}",
            hint,
        ) from exc


def send_email(message: EmailMessage, settings: SmtpSettings | None = None) -> None:
    """Hand ``message`` to the SMTP server; raise :class:`MailError` if it was not accepted."""
    settings = settings or SmtpSettings.from_env()
    if "From" not in message:
        message["From"] = settings.sender
    context = _tls_context(settings.ca_file)
    try:
        if settings.ssl:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with smtp:
            if settings.starttls:
                smtp.starttls(context=context)
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(
            f"SMTP server {settings.host}:{settings.port} did not take the message: {exc}"
        ) from exc
