"""The Scrapy project: settings, extraction, spiders and middlewares."""
