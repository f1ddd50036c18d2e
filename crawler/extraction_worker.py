"""What an extraction worker process does with a page: extract it and do the text work after.

In:  a page's text, its URL and :class:`~crawler.extraction.ExtractionOptions`.
Out: what :func:`crawler.extraction.extract_article` returns; an ``Extracted`` comes back with
     its title and text already tidied (``pipelines.normalize.tidy``), its ``content_hash``, and
     its ``language``/``language_confidence`` from ``pipelines.language.detect_language`` on
     the first ``options.language_sample`` characters.

The crawl process runs Scrapy, the pipeline and the Elasticsearch calls under one GIL; the
text work that needs nothing but the page is done here instead, on the other cores. The
normalize and language stages keep what they find already done, and still do it for articles
that did not come through a worker.

Importing this module loads trafilatura and langdetect's profiles (about a second), so the
forkserver that forks the workers (``crawler/extraction_pool.py``) pays for it once per crawl
and every worker starts ready.

:func:`exit_with` is each worker's initializer: a worker leaves as soon as the crawl process
that started it is gone, even when that process was killed with SIGKILL and could not stop its
pool. (The workers hold both ends of their task queue and the forkserver's keep-alive pipe, so
without it a killed crawl would leave the forkserver and every worker waiting forever.)
"""

from __future__ import annotations

import dataclasses
import os
import select
import threading

from crawler.extraction import Extracted, ExtractionOptions, NotAnArticle, extract_article
from pipelines.language import detect_language
from pipelines.normalize import content_hash, tidy


def extract_page(
    body: str, url: str, options: ExtractionOptions | None = None
) -> Extracted | NotAnArticle:
    """Extract one page, then tidy, hash and detect the language of what was extracted."""
    options = options or ExtractionOptions()
    result = extract_article(body, url, options)
    if isinstance(result, NotAnArticle):
        return result
    title, text = tidy(result.title), tidy(result.text)
    language, confidence = detect_language(title, text, options.language_sample)
    return dataclasses.replace(
        result,
        title=title,
        text=text,
        content_hash=content_hash(title, text),
        language=language,
        language_confidence=confidence,
    )


def exit_with(crawl_pid: int) -> None:
    """In a worker: leave (``os._exit``) when process ``crawl_pid`` ends, however it ends."""
    try:
        handle = os.pidfd_open(crawl_pid)  # readable once the process has ended
    except (AttributeError, OSError):  # no pidfd here (old kernel): look every two seconds
        handle = None
    if handle is None and not _alive(crawl_pid):
        os._exit(1)
    threading.Thread(
        target=_watch, args=(crawl_pid, handle), name="exit-with-crawl", daemon=True
    ).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch(crawl_pid: int, handle: int | None) -> None:
    if handle is not None:
        select.select([handle], [], [])
    else:
        while _alive(crawl_pid):
            threading.Event().wait(2)
    os._exit(1)


# The forkserver imports this module before forking any worker: one small page through the
# whole path loads what trafilatura and langdetect otherwise load on a worker's first page
# (language profiles, the list of top-level domains, compiled expressions).
_FIRST_PAGE = (
    "<html><head><title>Veille</title></head><body><article><h1>Veille</h1>"
    + "<p>A first page, read once so that every table is loaded before the crawl.</p>" * 12
    + "</article></body></html>"
)
extract_page(_FIRST_PAGE, "https://www.example.org/news/first-page.html")
try:  # trafilatura's URL helpers (courlan) load this domain list on first use
    from tld import get_tld
except ImportError:  # a trafilatura release without it
    pass
else:
    get_tld("https://www.example.org/", fail_silently=True)
