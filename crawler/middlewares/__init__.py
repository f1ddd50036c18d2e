"""Downloader middlewares of the Veille crawler."""
