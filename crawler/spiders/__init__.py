"""Spiders: each reads one kind of source and yields Article items."""
