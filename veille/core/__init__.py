"""The core: the article schema, configuration, Elasticsearch access and the text, clustering and
translation helpers that the crawler, the stages, the alerts and the operations share.

Imports nothing from the layers above it (see tests/test_layers.py).
"""
