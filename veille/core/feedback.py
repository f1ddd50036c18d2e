"""Signed one-click verdict links: what an alert email carries and ``veille serve`` checks.

In:  ``VEILLE_FEEDBACK_SECRET``, or the file ``VEILLE_FEEDBACK_SECRET_FILE`` names (the HMAC
     key, 16 characters or more; without it emails carry no links), ``VEILLE_FEEDBACK_URL``
     (the public address of ``veille serve``, needed to write links) and
     ``VEILLE_FEEDBACK_TTL`` (how long a link works, default :data:`DEFAULT_TTL`).
Out: :meth:`FeedbackSettings.link` writes ``<url>/verdict?t=<token>`` for one article, verdict
     and recipient; :meth:`FeedbackSettings.verify` turns a token back into a :class:`LinkClaim`
     or raises a :class:`LinkError` that says what is wrong with it.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, payload))``, the payload a
JSON array: format version, article id, verdict, expiry (Unix seconds), a random nonce and the
recipient. The signature is checked before anything in the payload is believed. The nonce makes
every link unique, so ``veille serve`` can refuse a link used once (see
:func:`veille.core.verdicts.record_verdict`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from veille.core.config import ConfigError, env_secret, parse_duration

DEFAULT_TTL = "30d"
SHORTEST_SECRET = 16
FORMAT = "v1"
LABELS = ("relevant", "irrelevant")
# Keys the signature to this use, so the secret signs nothing else by accident.
_CONTEXT = b"veille verdict link\n"


class LinkError(Exception):
    """A link that cannot be honoured: an HTTP status, a heading and what the reader can do."""

    status = 400
    heading = "This link is incomplete"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class LinkForged(LinkError):
    status = 403
    heading = "This link is not valid"


class LinkExpired(LinkError):
    status = 410
    heading = "This link has expired"

    def __init__(self, message: str, claim: LinkClaim) -> None:
        super().__init__(message)
        self.claim = claim


@dataclass(frozen=True)
class LinkClaim:
    """What a genuine link says: record ``label`` for ``article_id`` on behalf of ``recipient``."""

    article_id: str
    label: str
    expires_at: datetime
    nonce: str
    recipient: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class FeedbackSettings:
    """The key, the public address of ``veille serve`` and how long links work."""

    secret: bytes = field(repr=False)
    base_url: str | None
    ttl: timedelta

    @classmethod
    def from_env(cls, *, need_url: bool) -> FeedbackSettings | None:
        """The settings, or None without ``VEILLE_FEEDBACK_SECRET``; ``need_url`` for writing."""
        secret = env_secret("VEILLE_FEEDBACK_SECRET") or ""
        if not secret:
            return None
        if len(secret) < SHORTEST_SECRET:
            raise ConfigError(
                "(environment)",
                "VEILLE_FEEDBACK_SECRET",
                f"{len(secret)} characters is too short to sign links",
                f"use {SHORTEST_SECRET} or more, e.g. the output of `openssl rand -base64 32`",
            )
        raw_ttl = os.environ.get("VEILLE_FEEDBACK_TTL") or DEFAULT_TTL
        try:
            ttl = parse_duration(raw_ttl)
        except ValueError as exc:
            raise ConfigError("(environment)", "VEILLE_FEEDBACK_TTL", str(exc)) from None
        if ttl <= timedelta(0):
            raise ConfigError(
                "(environment)", "VEILLE_FEEDBACK_TTL", f"{raw_ttl!r} is no time at all",
                f"write how long a link works, e.g. {DEFAULT_TTL}",
            )  # fmt: skip
        base_url = (os.environ.get("VEILLE_FEEDBACK_URL") or "").strip().rstrip("/") or None
        if base_url is not None and not base_url.startswith(("https://", "http://")):
            raise ConfigError(
                "(environment)", "VEILLE_FEEDBACK_URL", f"{base_url!r} is not an http(s) address",
                "write the address readers reach `veille serve` at, e.g. "
                "https://veille.example.org/feedback",
            )  # fmt: skip
        if need_url and base_url is None:
            raise ConfigError(
                "(environment)", "VEILLE_FEEDBACK_URL",
                "not set, so alert emails cannot carry the verdict links VEILLE_FEEDBACK_SECRET "
                "asks for",
                "set it to the public address of `veille serve`, e.g. "
                "https://veille.example.org/feedback, or unset VEILLE_FEEDBACK_SECRET",
            )  # fmt: skip
        return cls(secret.encode("utf-8"), base_url, ttl)

    def _signature(self, payload: bytes) -> bytes:
        return hmac.new(self.secret, _CONTEXT + payload, hashlib.sha256).digest()

    def token(self, article_id: str, label: str, recipient: str, now: datetime) -> str:
        """A fresh token (its own nonce) valid until ``now`` plus the TTL."""
        if label not in LABELS:
            raise ValueError(f"verdict {label!r} is not one of {', '.join(LABELS)}")
        expires = int((now + self.ttl).timestamp())
        payload = json.dumps(
            [FORMAT, article_id, label, expires, secrets.token_urlsafe(12), recipient],
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode("utf-8")
        return f"{_b64(payload)}.{_b64(self._signature(payload))}"

    def link(self, article_id: str, label: str, recipient: str, now: datetime) -> str:
        """The address a reader clicks to record ``label`` for the article."""
        if self.base_url is None:
            raise ValueError("VEILLE_FEEDBACK_URL is needed to write links")
        token = self.token(article_id, label, recipient, now)
        return f"{self.base_url}/verdict?{urlencode({'t': token})}"

    def verify(self, token: str, now: datetime) -> LinkClaim:
        """The claim of a genuine, unexpired token; :class:`LinkError` for any other."""
        encoded, dot, signature = token.partition(".")
        try:
            payload, given = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            raise LinkError("The link's code is cut short or garbled.") from None
        if not dot or not payload or not given:
            raise LinkError("The link's code is cut short or garbled.")
        if not hmac.compare_digest(given, self._signature(payload)):
            raise LinkForged(
                "Its signature does not match: the link was altered, or it was signed with a key "
                "this server no longer uses. Nothing was recorded."
            )
        try:
            version, article_id, label, expires, nonce, recipient = json.loads(payload)
            expires_at = datetime.fromtimestamp(int(expires), UTC)
        except (ValueError, TypeError, OverflowError):
            raise LinkError("The link's code is not one this server writes.") from None
        if version != FORMAT or label not in LABELS:
            raise LinkError("The link's code is not one this server writes.")
        claim = LinkClaim(str(article_id), label, expires_at, str(nonce), str(recipient))
        if expires_at <= now:
            raise LinkExpired(
                f"It expired on {expires_at:%Y-%m-%d %H:%M} UTC. Nothing was recorded.",
                claim,
            )
        return claim
