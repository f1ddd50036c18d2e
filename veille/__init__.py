"""Veille: multilingual news monitoring."""

__version__ = "0.1.0"
