"""Operations: crawl runs, scheduling, health, workers, Kibana, backfill, rescoring, source
checks and the feedback server. Built on the core, the crawler, the stages and the alerts.
"""
