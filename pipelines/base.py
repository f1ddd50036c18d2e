"""What every stage shares: construction from the crawler, drop accounting, thread offloading,
and micro-batches (articles arriving close together share one thread call, one request)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Generic, NoReturn, Self, TypeVar

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.asyncio import CallLaterResult, call_later
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet.defer import Deferred

from veille.core.article import Article
from veille.core.threads import in_thread

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)


class MicroBatcher(Generic[T, R]):
    """Gathers items that arrive close together and does their blocking work in one thread call.

    A batch starts when ``size`` items wait, ``wait`` seconds after the first of them arrived,
    or on :meth:`flush`. ``work`` gets the batch's items in arrival order and returns one
    outcome per item, in that order: its result, or an exception for that item alone (an
    exception raised by ``work`` itself fails every item of the batch). With
    ``one_at_a_time``, a batch due while the previous one still runs starts as soon as that one
    ends, so each batch sees what the batch before it did.
    """

    def __init__(
        self,
        work: Callable[[list[T]], Sequence[R | Exception]],
        size: int,
        wait: float,
        *,
        one_at_a_time: bool = False,
    ) -> None:
        self.work = work
        self.size = size
        self.wait = wait
        self.one_at_a_time = one_at_a_time
        self._waiting: list[tuple[T, Deferred[R]]] = []
        self._timer: CallLaterResult | None = None
        self._running = False
        self._due = False

    async def submit(self, item: T) -> R:
        """The item's outcome once its batch is done; its exception is raised here."""
        done: Deferred[R] = Deferred()
        self._waiting.append((item, done))
        if len(self._waiting) >= self.size:
            self._start()
        elif self._timer is None:
            self._timer = call_later(self.wait, self._waited)
        return await maybe_deferred_to_future(done)

    def flush(self) -> None:
        """Start a batch with what waits now (the spider is closing)."""
        if self._waiting:
            self._start()

    def _waited(self) -> None:
        self._timer = None
        self._start()

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting:
            return
        if self._running:
            self._due = True
            return
        batch, self._waiting = self._waiting[: self.size], self._waiting[self.size :]
        self._due = bool(self._waiting)
        self._running = self.one_at_a_time
        deferred_from_coro(self._run(batch))

    async def _run(self, batch: list[tuple[T, Deferred[R]]]) -> None:
        outcomes: Sequence[R | Exception]
        try:
            outcomes = await in_thread(self.work, [item for item, _ in batch])
        except Exception as exc:
            outcomes = [exc] * len(batch)
        self._running = False
        if self._due:
            self._start()
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                done.errback(outcome)
            else:
                done.callback(outcome)


class Stage:
    """Base of the pipeline stages: keeps the crawler and its stats, counts drops by reason."""

    name = "stage"

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def count(self, key: str, value: int = 1) -> None:
        self.stats.inc_value(f"veille/{key}", value)

    def drop(self, article: Article, reason: str, detail: str = "") -> NoReturn:
        """Count ``veille/dropped/<reason>`` and drop the article with a readable message."""
        self.count(f"dropped/{reason}")
        message = f"{reason}: {article.url}" + (f" ({detail})" if detail else "")
        raise DropItem(message)


def drop_reason(dropped: BaseException) -> str:
    """The reason of a stage's drop (the message of :meth:`Stage.drop` starts with it)."""
    return str(dropped).partition(": ")[0] or dropped.__class__.__name__
