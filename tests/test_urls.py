"""Canonical URLs: every spelling of an article's address leads to one id."""

from veille.core.article import article_id
from veille.core.urls import canonicalize, domain_of


def test_tracking_parameters_are_removed():
    assert (
        canonicalize("https://News.Example.org/a/b.html?utm_source=rss&utm_medium=feed&fbclid=x")
        == "https://news.example.org/a/b.html"
    )


def test_real_parameters_are_kept_and_sorted():
    assert canonicalize("http://h.test/p?b=2&a=1&gclid=zz") == "http://h.test/p?a=1&b=2"


def test_default_port_fragment_and_amp_are_dropped():
    assert canonicalize("HTTPS://h.test:443/story/amp/#top") == "https://h.test/story"
    assert canonicalize("http://h.test:8080/x.amp.html") == "http://h.test:8080/x.html"


def test_same_article_same_id():
    a = article_id(canonicalize("http://127.0.0.1:9/a.html?utm_campaign=z"))
    b = article_id(canonicalize("http://127.0.0.1:9/a.html"))
    assert a == b


def test_domain_of():
    assert domain_of("https://www.lapresse.ca/x") == "lapresse.ca"
