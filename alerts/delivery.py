"""Delivery: due notifications grouped into one email per recipient and frequency, sent once.

In:  the notification log, the rules, the SMTP settings (``VEILLE_SMTP_*``, read by
     :mod:`veille.core.mailer`) and the time.
Out: emails handed to the SMTP server and the log updated; a :class:`DeliveryReport`.

For each (recipient, frequency) group of due notifications, oldest first:

1. claim them (``pending`` → ``sending`` with a batch id, guarded by ``if_seq_no``);
2. render the email and hand it to SMTP;
3. mark them ``sent``.

If SMTP is down or refuses, the claimed notifications go back to ``pending`` with a backoff
(1, 2, 4 … minutes, at most an hour), and no further email is tried in this run. An error
before SMTP (reading the articles, rendering) also releases the claim before it propagates.
Only a process that dies while talking to SMTP or before marking leaves ``sending`` behind:
the next run settles claims older than :data:`LEASE` as sent (unconfirmed) rather than
sending again — see :func:`alerts.notifications.reconcile_stale`. Pending notifications whose
rule or recipient left the config, whose article an analyst judged irrelevant, or whose article
an edited topic no longer keeps (``veille topics rescore``), are cancelled.

With ``VEILLE_FEEDBACK_SECRET`` set, each article in an email carries signed "Not relevant" and
"Relevant" links (:mod:`veille.core.feedback`); without it, the emails carry none and the process
logs one line saying so.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

from elasticsearch import Elasticsearch

from alerts import notifications
from alerts.digest import Digest, build_digest
from alerts.notifications import Notification
from alerts.render import render_message
from alerts.rules import RuleSet, normalize_recipient
from veille.core.es import IndexNames
from veille.core.feedback import FeedbackSettings
from veille.core.mailer import MailError, SmtpSettings, send_email
from veille.core.verdicts import judged_irrelevant, marked_off_topic

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=15)


@dataclass
class DeliveryReport:
    emails_sent: int = 0
    notifications_sent: int = 0
    emails_failed: int = 0
    notifications_left_pending: int = 0
    cancelled: int = 0
    judged_irrelevant: int = 0
    off_topic: int = 0
    reconciled: int = 0
    next_retry_at: datetime | None = None
    errors: list[str] = field(default_factory=list)


def _still_subscribed(note: Notification, rules: RuleSet) -> bool:
    rule = rules.get(note.rule)
    return rule is not None and note.recipient in rule.recipients


def _judged_irrelevant(
    client: Elasticsearch, names: IndexNames, notes: list[Notification]
) -> list[Notification]:
    """The notifications whose article an analyst judged irrelevant since it matched."""
    if not notes:
        return []
    judged = judged_irrelevant(client, names.articles, {note.article_id for note in notes})
    return [note for note in notes if note.article_id in judged]


def _off_topic(
    client: Elasticsearch, names: IndexNames, notes: list[Notification]
) -> list[Notification]:
    """The notifications whose article an edited topic no longer keeps since it matched."""
    if not notes:
        return []
    marked = marked_off_topic(client, names.articles, {note.article_id for note in notes})
    return [note for note in notes if note.article_id in marked]


def feedback_settings() -> FeedbackSettings | None:
    """The verdict links' settings; without a secret, None and one log line per process
    (``veille alerts send`` is one process per pass)."""
    settings = FeedbackSettings.from_env(need_url=True)
    if settings is None:
        _say_links_are_off()
    return settings


@functools.cache
def _say_links_are_off() -> None:
    logger.warning(
        "alert emails carry no Relevant/Not relevant links: VEILLE_FEEDBACK_SECRET is not set "
        "(see the README, Verdicts)"
    )


def _groups(notes: list[Notification]) -> list[list[Notification]]:
    groups: dict[tuple[str, str], list[Notification]] = defaultdict(list)
    for note in notes:
        groups[(note.recipient, note.frequency)].append(note)
    return list(groups.values())


def send_due(
    client: Elasticsearch,
    names: IndexNames,
    rules: RuleSet,
    now: datetime,
    *,
    retry_now: bool = False,
) -> DeliveryReport:
    """Send every email that is due; ``retry_now`` ignores the backoff of failed ones."""
    settings = SmtpSettings.from_env()
    index = names.notifications
    report = DeliveryReport(reconciled=notifications.reconcile_stale(client, index, now, LEASE))
    due = notifications.pending(client, index, due_by=now, now=now, ignore_backoff=retry_now)
    orphans = [note for note in due if not _still_subscribed(note, rules)]
    if orphans:
        notifications.cancel(client, index, orphans, now, "unsubscribed")
        report.cancelled = len(orphans)
    due = [note for note in due if _still_subscribed(note, rules)]
    judged = _judged_irrelevant(client, names, due)
    if judged:
        notifications.cancel(client, index, judged, now, "judged_irrelevant")
        report.cancelled += len(judged)
        report.judged_irrelevant = len(judged)
    skip = {note.id for note in judged}
    off_topic = _off_topic(client, names, [note for note in due if note.id not in skip])
    if off_topic:
        notifications.cancel(client, index, off_topic, now, "off_topic")
        report.cancelled += len(off_topic)
        report.off_topic = len(off_topic)
    feedback = feedback_settings() if due else None
    skip |= {note.id for note in off_topic}
    for group in _groups([note for note in due if note.id not in skip]):
        batch_id = uuid.uuid4().hex
        owned = notifications.claim(client, index, group, batch_id, now)
        if not owned:
            continue
        try:
            digest = build_digest(client, names.articles, rules, owned)
            message = (
                render_message(digest, now, batch_id, feedback=feedback) if digest.stories else None
            )
        except BaseException as exc:
            notifications.release(client, index, owned, f"{type(exc).__name__}: {exc}", now)
            raise
        if message is None:  # every article behind the group was deleted from the index
            notifications.cancel(client, index, owned, now, "article_deleted")
            report.cancelled += len(owned)
            continue
        try:
            send_email(message, settings)
        except MailError as exc:
            retry_at = notifications.release(client, index, owned, str(exc), now)
            report.emails_failed += 1
            report.notifications_left_pending += len(owned)
            report.next_retry_at = retry_at
            report.errors.append(str(exc))
            logger.warning(
                "alert email to %s not sent, retry after %s: %s",
                owned[0].recipient, retry_at.isoformat(), exc,
            )  # fmt: skip
            break
        notifications.mark_sent(client, index, owned, now)
        report.emails_sent += 1
        report.notifications_sent += len(owned)
    return report


def next_digest(
    client: Elasticsearch, names: IndexNames, rules: RuleSet, recipient: str, now: datetime
) -> tuple[Digest, EmailMessage] | None:
    """The next email ``recipient`` will get (whatever its due time), rendered, nothing claimed."""
    due = notifications.pending(
        client, names.notifications, due_by=None, now=now, ignore_backoff=True,
        recipient=normalize_recipient(recipient),
    )  # fmt: skip
    due = [note for note in due if _still_subscribed(note, rules)]
    skip = {note.id for note in _judged_irrelevant(client, names, due)}
    skip |= {note.id for note in _off_topic(client, names, due)}
    due = [note for note in due if note.id not in skip]
    if not due:
        return None
    group = _groups(due)[0]
    digest = build_digest(client, names.articles, rules, group)
    return digest, render_message(digest, now, "preview", feedback=feedback_settings())
