"""Scrapy settings for Veille crawls. Veille's own settings start with ``VEILLE_``.

Politeness: robots.txt is obeyed, AutoThrottle adapts the pace to each site, and at most
``CONCURRENT_REQUESTS_PER_DOMAIN`` requests go to one site at a time. Override any of these for
one run with ``veille crawl --set NAME=VALUE`` (or ``scrapy crawl -s NAME=VALUE``).
"""

import os

from veille.config import config_dir

BOT_NAME = "veille"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

USER_AGENT = os.environ.get(
    "VEILLE_USER_AGENT", "Veille/0.1 (news monitoring; respects robots.txt)"
)
ROBOTSTXT_OBEY = True

CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_DELAY = 0.5
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.5

DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 8 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 2
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = os.environ.get("VEILLE_LOG_LEVEL", "INFO")

HTTPCACHE_ENABLED = os.environ.get("VEILLE_HTTPCACHE", "").lower() in {"1", "true", "yes"}
HTTPCACHE_DIR = "httpcache"

ITEM_PIPELINES = {
    "pipelines.normalize.NormalizeStage": 100,
    "pipelines.language.LanguageStage": 200,
    "pipelines.relevance.RelevanceStage": 300,
    "pipelines.dedupe.DedupeStage": 400,
    "pipelines.translate.TranslateStage": 500,
    "pipelines.index.IndexStage": 900,
}

# The config folder (sources.yaml, topics/): --config DIR or VEILLE_CONFIG, else ./config.
VEILLE_CONFIG = str(config_dir())
# Languages kept; others are dropped as language_unsupported.
VEILLE_LANGUAGES = ["fr", "en", "es"]
# Pages with fewer words than this are not articles (section fronts, contact pages).
VEILLE_MIN_WORDS = 80
# Bulk indexing: documents per request and seconds between flushes.
VEILLE_BULK_SIZE = 200
VEILLE_BULK_INTERVAL = 2.0
# Translation into the pivot language (see pipelines/translate.py). Off: articles are indexed
# with translation_status "pending" and `veille translate --pending` translates them later.
VEILLE_TRANSLATION = os.environ.get("VEILLE_TRANSLATION", "true").lower() not in {"0", "false"}
VEILLE_PIVOT = os.environ.get("VEILLE_PIVOT", "en")
VEILLE_TRANSLATE_BATCH = 16
VEILLE_TRANSLATE_WAIT = 0.5
VEILLE_TRANSLATE_COMPUTE_TYPE = "int8"
VEILLE_TRANSLATE_BEAM_SIZE = 2
VEILLE_TRANSLATE_INTER_THREADS = 1
VEILLE_TRANSLATE_INTRA_THREADS = 2
# Incremental crawling: do not fetch article pages whose URL is already indexed.
VEILLE_SKIP_INDEXED = True

EXTENSIONS = {"crawler.extensions.stats_file.StatsFile": 500}
# Write the crawl's stats as JSON to this file when it closes (set by the scheduler; empty: off).
VEILLE_STATS_FILE = ""
