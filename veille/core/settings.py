"""Veille's ``VEILLE_`` settings read into plain values, for the crawl and for other commands.

In:  a Scrapy settings object built on ``crawler/settings.py``, which holds every default once
     (a crawl's ``crawler.settings``; ``veille.ops.crawl.crawl_settings()`` elsewhere).
Out: validated values: batch limits, :class:`~veille.core.clusters.ClusterSettings`,
     :class:`~veille.core.translation.TranslationSettings`. A bad value raises
     :class:`~veille.core.config.ConfigError` naming the setting.
"""

from __future__ import annotations

from scrapy.settings import BaseSettings

from veille.core.clusters import ClusterSettings
from veille.core.config import ConfigError, parse_duration
from veille.core.minhash import Scheme
from veille.core.translation import TranslationSettings

SETTINGS_FILE = "crawler/settings.py (or --set)"


def batch_limits(settings: BaseSettings, size_name: str, wait_name: str) -> tuple[int, float]:
    """A batch size (>= 1) and a wait in seconds (>= 0) from the two settings named."""
    try:
        items = settings.getint(size_name)
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, size_name, str(exc), "use a whole number >= 1") from exc
    if items < 1:
        raise ConfigError(SETTINGS_FILE, size_name, f"{items} is too small", "use 1 or more")
    try:
        seconds = settings.getfloat(wait_name)
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, wait_name, str(exc), "use seconds, e.g. 0.25") from exc
    if seconds < 0:
        raise ConfigError(SETTINGS_FILE, wait_name, f"{seconds} is negative", "use 0 or more")
    return items, seconds


def _threshold(settings: BaseSettings, name: str) -> float:
    value = settings.getfloat(name)
    if not 0 < value <= 1:
        raise ConfigError(SETTINGS_FILE, name, f"{value} is not a similarity", "use 0 < x <= 1")
    return value


def _scheme(settings: BaseSettings, prefix: str) -> Scheme:
    try:
        return Scheme(
            shingle=settings.getint(f"{prefix}_SHINGLE"),
            bands=settings.getint(f"{prefix}_BANDS"),
            rows=settings.getint(f"{prefix}_ROWS"),
            min_word_length=settings.getint(f"{prefix}_MIN_WORD"),
        )
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, f"{prefix}_*", str(exc), "use whole numbers >= 1") from exc


def cluster_settings(settings: BaseSettings) -> ClusterSettings:
    """Cluster thresholds and MinHash schemes, validated."""
    try:
        window = parse_duration(settings.get("VEILLE_CROSS_LANGUAGE_WINDOW"))
    except ValueError as exc:
        raise ConfigError(SETTINGS_FILE, "VEILLE_CROSS_LANGUAGE_WINDOW", str(exc)) from exc
    return ClusterSettings(
        scheme=_scheme(settings, "VEILLE_MINHASH"),
        pivot_scheme=_scheme(settings, "VEILLE_MINHASH_PIVOT"),
        duplicate_threshold=_threshold(settings, "VEILLE_NEAR_DUPLICATE_THRESHOLD"),
        cross_language_threshold=_threshold(settings, "VEILLE_CROSS_LANGUAGE_THRESHOLD"),
        window=window,
        pivot=settings.get("VEILLE_PIVOT"),
    )


def translation_settings(settings: BaseSettings) -> TranslationSettings:
    """The translation engine's settings."""
    return TranslationSettings(
        pivot=settings.get("VEILLE_PIVOT"),
        compute_type=settings.get("VEILLE_TRANSLATE_COMPUTE_TYPE"),
        beam_size=settings.getint("VEILLE_TRANSLATE_BEAM_SIZE"),
        inter_threads=settings.getint("VEILLE_TRANSLATE_INTER_THREADS"),
        intra_threads=settings.getint("VEILLE_TRANSLATE_INTRA_THREADS"),
    )
