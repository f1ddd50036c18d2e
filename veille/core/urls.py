"""Canonical URLs: one spelling per article, whatever link led to it.

In:  any http(s) URL as found in a feed, a redirect or a ``rel=canonical`` link.
Out: lowercase scheme and host, no default port, no fragment, tracking parameters removed
     (``utm_*``, ``fbclid``, ``gclid``, …), AMP markers removed, query sorted.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "twclid",
        "mc_cid", "mc_eid", "_ga", "_gl", "ocid", "cmpid", "xtor", "at_medium", "at_campaign",
        "ns_source", "ns_mchannel", "ns_campaign", "ito", "ref", "ref_src", "src", "amp",
        "outputtype", "sh", "s_cid", "guccounter", "spm", "share", "smid", "taid",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "at_", "pk_", "hsa_", "mtm_")
_AMP_DIR = re.compile(r"/amp/?$", re.IGNORECASE)
_AMP_EXT = re.compile(r"\.amp(\.html?)$", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def canonicalize(url: str) -> str:
    """Return the canonical spelling of ``url`` (see module docstring)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + (
            f":{port}" if port not in (None, _DEFAULT_PORTS.get(scheme)) else ""
        )
    path = _AMP_EXT.sub(r"\1", _AMP_DIR.sub("", parts.path)) or "/"
    query = sorted(
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _is_tracking(name)
    )
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def domain_of(url: str) -> str:
    """The host of a URL without a leading ``www.``."""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def web_link(url: str) -> str:
    """``url`` when it is an http(s) address, else ``#``: an ``href`` never runs a script."""
    return url if url.startswith(("https://", "http://")) else "#"
