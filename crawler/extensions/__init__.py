"""Scrapy extensions: components that watch a whole crawl (enabled in ``crawler/settings.py``)."""
