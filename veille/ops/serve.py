"""``veille serve``: the small web service behind the verdict links of alert emails.

In:  HTTP on 127.0.0.1:8080 unless told otherwise: ``GET /verdict?t=TOKEN`` (a link clicked in an
     email), ``POST /verdict`` (form fields ``t`` and an optional ``note``), ``GET /healthz``; the
     feedback settings (:mod:`veille.core.feedback`) and Elasticsearch.
Out: small HTML pages (Jinja2, autoescaped) and, for the POST of a genuine, unexpired, unused
     link, the verdict recorded (:func:`veille.core.verdicts.record_verdict`).

A GET never records anything. Mail scanners and link previews fetch every link of an email
before anyone reads it; if the GET recorded the verdict, every article of every email would be
judged "Not relevant" by a machine. The GET page shows the article and one button, and the
button POSTs. No script presses it: scanners that run scripts would press it too, and the pages'
Content-Security-Policy allows no script at all.

A forged link gets 403, a garbled one 400, an expired one 410, one used before 409, one whose
article is gone 404, and an Elasticsearch outage 503; none of them changes anything. Every page
is sent with ``Cache-Control: no-store`` (a verdict page must not be replayed from a cache),
frame denial (``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``, so no other site can
trick a click) and ``Referrer-Policy: no-referrer`` (the link's token must not leak to the
article's site). The access log names the method, path and status, never the token.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import signal
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from veille.core.article import utcnow
from veille.core.es import IndexNames
from veille.core.feedback import FeedbackSettings, LinkClaim, LinkError, LinkExpired
from veille.core.urls import web_link
from veille.core.verdicts import (
    NOTE_CHARS,
    ArticleNotFound,
    ArticleRef,
    LinkAlreadyUsed,
    Verdict,
    find_article,
    record_verdict,
    used_link,
)

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MAX_BODY = 16 * 1024
LABELS = {"irrelevant": "Not relevant", "relevant": "Relevant"}
STYLE = (
    "body{margin:0;background:#f4f4f2;color:#222;font:16px/1.5 system-ui,sans-serif}"
    "main{max-width:36em;margin:3em auto;padding:1.5em 2em;background:#fff;"
    "border-top:4px solid #2a5d9f;border-radius:4px}"
    "main.bad,main.irrelevant{border-top-color:#b33}"
    "main.done,main.relevant{border-top-color:#2a7a2a}"
    ".brand{margin:0;color:#777;font-size:.8em;letter-spacing:.05em;text-transform:uppercase}"
    "h1{font-size:1.35em;margin:.3em 0 .8em}"
    ".article{border-left:3px solid #ddd;padding:.1em 0 .1em 1em;margin:1em 0}"
    ".title{font-weight:600;margin:0}.title a{color:#1a4d8f}.meta{margin:.2em 0;color:#666;"
    "font-size:.9em}label{display:block;margin:1em 0 .3em;font-size:.9em;color:#444}"
    "textarea{width:100%;box-sizing:border-box;font:inherit;padding:.4em}"
    "button{margin-top:1em;padding:.6em 1.4em;font:inherit;font-weight:600;color:#fff;"
    "border:0;border-radius:4px;cursor:pointer}button.irrelevant{background:#b33}"
    "button.relevant{background:#2a7a2a}.small{color:#777;font-size:.85em}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates" / "serve"),
    autoescape=True,
    undefined=StrictUndefined,
)
_TEMPLATES.filters["link"] = web_link


@dataclass(frozen=True)
class Page:
    """What one request gets: a status, a template and what it shows."""

    status: int
    heading: str
    template: str = "message.html.j2"
    tone: str = "bad"
    context: dict[str, Any] = field(default_factory=dict)

    def render(self) -> bytes:
        html = _TEMPLATES.get_template(self.template).render(
            heading=self.heading, tone=self.tone, style=STYLE, labels=LABELS, **self.context
        )
        return html.encode("utf-8")


def _message(status: int, heading: str, *paragraphs: str, **context: Any) -> Page:
    context.setdefault("article", None)
    context.setdefault("note", None)
    tone = "done" if status < 400 else "bad"
    return Page(status, heading, tone=tone, context={"paragraphs": paragraphs, **context})


def _when(at: str | None) -> str:
    return (at or "?")[:16].replace("T", " ") + " UTC"


class FeedbackApp:
    """What each request gets; :class:`FeedbackHandler` does the HTTP around it."""

    def __init__(
        self, client: Elasticsearch, names: IndexNames, settings: FeedbackSettings
    ) -> None:
        self.client = client
        self.names = names
        self.settings = settings

    def confirm(self, token: str | None, now: datetime) -> Page:
        """The page a click opens: the article and one button. Changes nothing."""
        try:
            claim, article = self._check(token, now)
            previous = used_link(self.client, self.names.verdicts, claim.nonce)
        except _Refused as refused:
            return refused.page
        except (ApiError, TransportError) as exc:
            return self._unavailable(exc)
        if previous is not None:
            return self._used(previous, article)
        explanation = (
            "This article will leave your alerts and Kibana's default searches and dashboards. "
            "It is not deleted: the saved search \u201cJudged irrelevant\u201d still shows it."
            if claim.label == "irrelevant"
            else "This confirms the article is on topic; it stays in alerts and in Kibana."
        )
        return Page(
            200,
            f"Mark this article as {LABELS[claim.label].lower()}?",
            template="confirm.html.j2",
            tone=claim.label,
            context={
                "article": article,
                "label": claim.label,
                "token": token,
                "explanation": explanation,
                "note_chars": NOTE_CHARS,
                "expires": f"{claim.expires_at:%Y-%m-%d %H:%M} UTC",
            },
        )

    def record(self, token: str | None, note: str | None, now: datetime) -> Page:
        """Record the link's verdict once; every refusal leaves everything as it was."""
        try:
            claim, article = self._check(token, now)
            verdict = Verdict(claim.label, now, "email", note=note, by=claim.recipient)
            record_verdict(self.client, self.names, article, verdict, link=claim)
        except _Refused as refused:
            return refused.page
        except LinkAlreadyUsed as used:
            return self._used(used.previous, article)
        except (ApiError, TransportError) as exc:
            return self._unavailable(exc)
        logger.info("verdict %s recorded for article %s by email link", claim.label, article.id)
        after = (
            "It will not appear in future alerts, nor in Kibana's default searches and dashboards. "
            "Nothing is deleted: Kibana's saved search \u201cJudged irrelevant\u201d lists it."
            if claim.label == "irrelevant"
            else "Thank you: the article stays in alerts and in Kibana, marked as relevant."
        )
        return _message(
            200,
            f"Recorded: {LABELS[claim.label].lower()}",
            after,
            article=article,
            note=verdict.document()["note"],
        )

    def _check(self, token: str | None, now: datetime) -> tuple[LinkClaim, ArticleRef]:
        if not token:
            raise _Refused(_message(
                400, "This link is incomplete",
                "The address has no verdict code. Open the link from the email again, whole.",
            ))  # fmt: skip
        try:
            claim = self.settings.verify(token, now)
        except LinkExpired as exc:
            raise _Refused(_message(
                exc.status, exc.heading, exc.message,
                "Your Veille operator can still record it with: veille review "
                f"{exc.claim.article_id} {exc.claim.label}",
            )) from None  # fmt: skip
        except LinkError as exc:
            raise _Refused(_message(exc.status, exc.heading, exc.message)) from None
        try:
            article = find_article(self.client, self.names.articles, claim.article_id)
        except ArticleNotFound:
            raise _Refused(_message(
                404, "This article is no longer indexed",
                "It was removed from the index after the email was sent. Nothing was recorded.",
            )) from None  # fmt: skip
        return claim, article

    @staticmethod
    def _used(previous: dict[str, Any], article: ArticleRef | None) -> Page:
        label = LABELS.get(previous.get("label", ""), "a verdict").lower()
        return _message(
            409,
            "This link was already used",
            f"It recorded \u201c{label}\u201d on {_when(previous.get('at'))}. Each link works "
            "once, so nothing was changed now.",
            article=article,
        )

    @staticmethod
    def _unavailable(exc: Exception) -> Page:
        logger.warning("Elasticsearch failed while handling a verdict link: %s", exc)
        return _message(
            503,
            "Please try again in a few minutes",
            "The verdict store cannot be reached right now. Nothing was recorded; the link "
            "still works.",
        )


class _Refused(Exception):
    def __init__(self, page: Page) -> None:
        self.page = page


class FeedbackHandler(BaseHTTPRequestHandler):
    """HTTP for :class:`FeedbackApp`: routing, form parsing, headers, the access log."""

    server: FeedbackServer
    timeout = 30  # seconds a client may take to send its request

    def version_string(self) -> str:
        return "veille"

    def do_GET(self) -> None:
        self._get(body=True)

    def do_HEAD(self) -> None:
        self._get(body=False)

    def _get(self, body: bool) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, b"ok\n", "text/plain; charset=utf-8", body)
        elif url.path == "/verdict":
            tokens = parse_qs(url.query).get("t", [])
            page = self.server.app.confirm(tokens[0] if len(tokens) == 1 else None, utcnow())
            self._send_page(page, body)
        else:
            self._send_page(self._not_found(), body)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/verdict":
            self._send_page(self._not_found())
            return
        form = self._form()
        if isinstance(form, Page):
            self._send_page(form)
            return
        tokens, notes = form.get("t", []), form.get("note", [])
        page = self.server.app.record(
            tokens[0] if len(tokens) == 1 else None, notes[0] if notes else None, utcnow()
        )
        self._send_page(page)

    def _form(self) -> dict[str, list[str]] | Page:
        kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return _message(415, "Unexpected request", "Send the form from the verdict page.")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return _message(411, "Unexpected request", "The form came without its length.")
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return _message(413, "Unexpected request", "The form is larger than the page sends.")
        try:
            text = self.rfile.read(length).decode("utf-8")
        except (UnicodeDecodeError, OSError):
            return _message(400, "Unexpected request", "The form could not be read.")
        return parse_qs(text, keep_blank_values=True)

    @staticmethod
    def _not_found() -> Page:
        return _message(404, "Nothing here", "This service only answers the verdict links "
                        "in Veille's alert emails.")  # fmt: skip

    def _send_page(self, page: Page, body: bool = True) -> None:
        self._send(page.status, page.render(), "text/html; charset=utf-8", body)

    def _send(self, status: int, payload: bytes, content_type: str, body: bool = True) -> None:
        self.send_response(status)
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (bad request line, unknown method) as our page."""
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        page = _message(code, phrase, "This service only answers the verdict links in Veille's "
                        "alert emails.")  # fmt: skip
        self._send_page(page, body=self.command != "HEAD")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The query string holds the link's token: log the path alone.
        path = urlsplit(getattr(self, "path", None) or "-").path
        logger.info("%s %s %s", self.command or "-", path, getattr(code, "value", code))

    def log_message(self, format: str, *args: Any) -> None:
        logger.warning(format, *args)


class FeedbackServer(ThreadingHTTPServer):
    """One thread per request; the Elasticsearch client is shared (it is thread-safe)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: FeedbackApp) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, FeedbackHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}"


def run_server(server: FeedbackServer) -> None:
    """Serve in the foreground until SIGTERM or SIGINT."""
    stopping = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            logger.info("%s received: stopping", signal.Signals(signum).name)
            # shutdown() waits for serve_forever() to return: it must not run on its thread.
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    logger.info("stopped")
