"""Email rendering: a :class:`alerts.digest.Digest` as a multipart text + HTML message.

In:  a digest, the sending time, a message id.
Out: an ``email.message.EmailMessage`` with ``To``, ``Subject``, ``Date``, ``Message-ID`` (the
     sender's ``From`` is added by :func:`veille.core.mailer.send_email`), a plain-text part and an
     HTML part rendered from ``alerts/templates/`` with Jinja2 (autoescape on for HTML, so markup
     in a title is shown, never interpreted); with feedback settings, every article carries
     signed "Not relevant" and "Relevant" links (:mod:`veille.core.feedback`).

Header injection is impossible: every header value is built from one line of text (all line
breaks and control characters folded to spaces) and set through the ``email`` package's header
registry, which refuses a value that would still contain a line break.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from alerts.digest import MARK_END, MARK_START, Digest, Story
from veille.core.feedback import LABELS, FeedbackSettings
from veille.core.languages import PIVOT
from veille.core.urls import web_link

SUBJECT_TITLE_CHARS = 120
SUBJECT_CHARS = 200
# Python's header folding drops the spaces between encoded words it splits at a fold
# ("enquête à Montréal" arrives as "enquêteàMontréal"); headers here are one line of at most
# SUBJECT_CHARS, so they are never folded.
_POLICY = policy.SMTP.clone(max_line_length=998)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

_DIGESTS = {"hourly": "Hourly digest", "daily": "Daily digest"}


def one_line(value: str, limit: int | None = None) -> str:
    """Text safe for a header: no line breaks or control characters, whitespace collapsed."""
    text = " ".join(_CONTROL.sub(" ", value).split())
    if limit and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _plain_marks(snippet: str) -> str:
    return snippet.replace(MARK_START, "«").replace(MARK_END, "»")


def _html_marks(snippet: str) -> Markup:
    escaped = str(escape(snippet))
    return Markup(escaped.replace(MARK_START, "<mark>").replace(MARK_END, "</mark>"))


def _also_in(story: Story) -> str:
    more = f", +{story.also_in_more}" if story.also_in_more else ""
    return ", ".join(story.also_in) + more


_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)
_TEMPLATES.filters.update(plain_marks=_plain_marks, html_marks=_html_marks, also_in=_also_in)
_TEMPLATES.filters["link"] = web_link


def _summary(digest: Digest) -> str:
    """ "3 new articles" or "Daily digest: 3 articles"."""
    n = len(digest.stories)
    noun = "article" if n == 1 else "articles"
    digest_name = _DIGESTS.get(digest.frequency.split()[0])
    return f"{digest_name}: {n} {noun}" if digest_name else f"{n} new {noun}"


def subject(digest: Digest) -> str:
    """``[Veille] rule: Title`` for one story, else counts and rule names."""
    if len(digest.stories) == 1 and digest.frequency == "immediate":
        story = digest.stories[0]
        text = f"[Veille] {', '.join(story.rules)}: {one_line(story.title, SUBJECT_TITLE_CHARS)}"
    else:
        rules = ", ".join(f"{name} ({count})" for name, count in digest.rule_counts.items())
        text = f"[Veille] {_summary(digest)} · {rules}"
    return one_line(text, SUBJECT_CHARS)


def verdict_links(
    digest: Digest, now: datetime, feedback: FeedbackSettings | None
) -> dict[str, dict[str, str]]:
    """Per article of the digest, its signed "irrelevant" and "relevant" links (none without
    ``feedback``); each link has its own nonce, so each can be used once."""
    if feedback is None:
        return {}
    return {
        story.article_id: {
            label: feedback.link(story.article_id, label, digest.recipient, now) for label in LABELS
        }
        for story in digest.stories
    }


def render_message(
    digest: Digest,
    now: datetime,
    message_id: str,
    pivot: str = PIVOT,
    feedback: FeedbackSettings | None = None,
) -> EmailMessage:
    """The email for ``digest``: headers, a text part and an HTML alternative; with
    ``feedback``, each article carries its "Not relevant" and "Relevant" links."""
    title = subject(digest)
    context = {
        "verdict_links": verdict_links(digest, now, feedback),
        "links_until": f"{now + feedback.ttl:%Y-%m-%d}" if feedback else "",
        "subject": title,
        "heading": f"{_summary(digest)} for {', '.join(digest.rule_counts)}",
        "stories": digest.stories,
        "recipient": digest.recipient,
        "frequency": digest.frequency,
        "pivot": pivot,
    }
    message = EmailMessage(policy=_POLICY)
    message["To"] = Address(addr_spec=one_line(digest.recipient))
    message["Subject"] = title
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{one_line(message_id)}@veille.alerts>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_TEMPLATES.get_template("digest.txt.j2").render(context))
    message.add_alternative(
        _TEMPLATES.get_template("digest.html.j2").render(context), subtype="html"
    )
    return message
