"""Log lines for dropped articles: the reason and the URL, not the whole article.

Scrapy's default logs every dropped item as a WARNING with its full representation, which buries
real warnings under article texts. A drop is routine (off-topic, duplicate): it is logged at INFO
with the stage's message, e.g. ``Dropped: off_topic: https://… (no topic rule matched)``.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter


class QuietDrops(LogFormatter):
    def dropped(
        self, item: Any, exception: BaseException, response: Response | None, spider: Spider
    ) -> dict[str, Any]:
        return {"level": logging.INFO, "msg": "Dropped: %(reason)s", "args": {"reason": exception}}
