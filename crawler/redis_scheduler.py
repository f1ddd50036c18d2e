"""Redis scheduler: scrapy-redis's shared request queue, fitted to Scrapy 2.13+ stats.

In:  what scrapy-redis's ``Scheduler`` reads (``SCHEDULER_QUEUE_KEY``, ``SCHEDULER_PERSIST``,
     ``DUPEFILTER_CLASS``, ``REDIS_URL``, ...).
Out: the same scheduler; only its two counters, ``scheduler/enqueued/redis`` and
     ``scheduler/dequeued/redis``, are counted without the ``spider`` argument that Scrapy 2.19
     deprecates (scrapy-redis 0.9.1 still passes it, with a warning per request).
"""

from __future__ import annotations

from scrapy.http import Request
from scrapy_redis.scheduler import Scheduler


class RedisScheduler(Scheduler):
    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        request = self.queue.pop(self.idle_before_close)
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request
