"""Keyword email alerts: rules → percolator → notification log → digests by SMTP.

``rules`` (config/alerts.yaml) · ``query`` (keywords → Elasticsearch) · ``percolator`` (rules
index, percolation) · ``matching`` (new articles since the checkpoint) · ``notifications`` (the
log, deterministic ids) · ``digest`` and ``render`` (the email) · ``delivery`` (send once) ·
``run`` (one pass, what the scheduler calls) · ``cli`` (``veille alerts``).
"""
