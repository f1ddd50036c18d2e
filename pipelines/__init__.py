"""Item pipeline stages, one module per stage, run by Scrapy in this order.

normalize → language → relevance → dedupe → translate → cluster → index

Each stage takes an :class:`veille.core.article.Article`, fills in its fields and returns it, or
raises ``DropItem`` with a reason; the reason is counted in the crawl stats as
``veille/dropped/<reason>``.
"""
