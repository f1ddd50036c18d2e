"""Outages of the services Veille talks to (Elasticsearch, Redis, SMTP): one WARNING per run.

In:  a run's counters (Scrapy's stats collector, or any object with ``get_value``/``inc_value``),
     the service that failed, the error, and what is done instead (what is kept, and where).
Out: the counter ``veille/outages/<service>`` incremented at each failure; the first failure of
     the run logged once at WARNING saying what is down and what was kept, the next ones at
     DEBUG only. A minute of Elasticsearch down during a crawl used to log one line per article
     and per retry, each with a traceback.

:func:`quiet_client_logs` turns down the client libraries' own loggers, which log every retry
of every request at WARNING with a traceback; the callers report the outage themselves.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from veille.core.spool import spool_dir

# Loggers of the clients' retry loops: each failed attempt of each request, with a traceback.
CLIENT_RETRY_LOGGERS = ("elastic_transport", "urllib3.connectionpool")


class Counters(Protocol):
    def get_value(self, key: str, default: Any = None) -> Any: ...

    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


def describe(error: BaseException) -> str:
    """An error in one line: its type and the start of its message."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def report_outage(
    counters: Counters, log: logging.Logger, service: str, error: BaseException, kept: str
) -> None:
    """Count a failure to reach ``service``; log the run's first one at WARNING.

    ``kept`` says what happens to the work meanwhile, e.g. "articles go to the spool … and are
    stored by the next run".
    """
    key = f"veille/outages/{service.lower()}"
    first = not counters.get_value(key)
    counters.inc_value(key)
    if first:
        log.warning(
            "%s unreachable (%s): %s. Further failures of this run are counted as %s, "
            "not logged.", service, describe(error), kept, key,
        )  # fmt: skip
    else:
        log.debug("%s still unreachable (%s)", service, describe(error))


def report_crawl_es_outage(
    counters: Counters, log: logging.Logger, error: BaseException, data_dir: Path
) -> None:
    """:func:`report_outage` for Elasticsearch during a crawl, in the same words whichever part
    of the crawl meets the outage first (a look-up, a stage, the index stage's bulk)."""
    report_outage(
        counters, log, "Elasticsearch", error,
        f"the articles it cannot store are kept in the spool {spool_dir(data_dir)} and stored "
        "when the next crawl opens (or by `veille spool replay`); meanwhile copies and story "
        "clusters are judged without the index, and station register updates wait for "
        "`veille stations update`",
    )  # fmt: skip


def quiet_client_logs() -> None:
    """Client retry loggers at ERROR: an outage is reported once by :func:`report_outage`."""
    for name in CLIENT_RETRY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
