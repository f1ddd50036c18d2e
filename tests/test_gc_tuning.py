"""The crawl's garbage-collection tuning (crawler/extensions/gc_tuning.py).

A crawl freezes what it loaded before it started and collects young objects less often; when
it ends, a process that goes on (tests, a worker between crawls) gets Python's collector back
as it was, with nothing left frozen.
"""

from __future__ import annotations

import gc

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from crawler.extensions.gc_tuning import GcTuningExtension
from crawler.spiders.feeds import FeedSpider
from veille.ops.crawl import crawl_settings


def crawl(**overrides: object):
    """A crawler with the crawl's garbage-collection settings (crawler/settings.py), overridden."""
    defaults = crawl_settings()
    shipped = {name: defaults[name] for name in ("VEILLE_GC_FREEZE", "VEILLE_GC_THRESHOLD")}
    return get_crawler(FeedSpider, {**shipped, **overrides})


@pytest.fixture(autouse=True)
def restore_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    GcTuningExtension._engines, GcTuningExtension._saved_threshold = 0, None


def test_crawl_freezes_what_was_loaded_and_gives_it_back():
    before = gc.get_threshold()
    loaded = [{"kept": i} for i in range(1000)]  # alive when the engine starts
    extension = GcTuningExtension.from_crawler(crawl(VEILLE_GC_THRESHOLD=5000))
    extension.engine_started()
    assert gc.get_freeze_count() >= len(loaded)
    assert gc.get_threshold()[0] == 5000
    made_during = [[]]
    made_during[0].append(made_during)  # a cycle made during the crawl is still collectable
    del made_during
    assert gc.collect() >= 1
    extension.engine_stopped()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def test_two_spiders_in_one_process_thaw_only_when_the_last_stops():
    first = GcTuningExtension.from_crawler(crawl())
    second = GcTuningExtension.from_crawler(crawl())
    first.engine_started()
    second.engine_started()
    first.engine_stopped()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 7000
    second.engine_stopped()
    assert gc.get_freeze_count() == 0


def test_setting_off_leaves_the_collector_alone():
    with pytest.raises(NotConfigured):
        GcTuningExtension.from_crawler(crawl(VEILLE_GC_FREEZE=False))
