"""Webhook and notification URLs → what is wrong with them, in words that quote none of the URL.

A URL can carry a token in its path or query: these checks name the problem (a port that is no
number, no host, a scheme other than http/https, a space) and never the text. `planfile` checks
the URLs a plan holds when it is loaded; `notify` checks one read from a hub Secret before sending.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any


def host_of(url: str) -> str:
    """`scheme://host[:port]` of a URL that passed `url_problem` ("?" for what cannot be read)."""
    try:
        p = urllib.parse.urlsplit(url)
        port = p.port
    except ValueError:
        return "?"
    return f"{p.scheme}://{p.hostname or '?'}" + (f":{port}" if port else "")


def url_problem(url: str) -> str:
    """Why `url` cannot be sent to, in words that quote none of it; "" when it can."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "it holds a space or a control character"
    try:
        p = urllib.parse.urlsplit(url)
    except ValueError:
        return "it is not a URL (a malformed [host])"
    if p.scheme not in ("http", "https"):
        return "only http and https URLs are sent"
    try:
        host, _port = p.hostname, p.port
    except ValueError:
        return "its port is not a number from 0 to 65535"
    if not host:
        return "it names no host"
    return ""


def spec_problem(spec: Any) -> str:
    """What is wrong with the shape of a `url` (a string, `{value}` or `{secretRef: {name, key}}`);
    for a URL given in the plan, what is wrong with the URL too. Never quotes the URL."""
    if isinstance(spec, str):
        return "" if not url_problem(spec) else f"url is not a URL that can be sent to: {url_problem(spec)}"
    if not isinstance(spec, Mapping):
        return "url must be {value: ...} or {secretRef: {name, key}}"
    if spec.get("value"):
        bad = url_problem(str(spec["value"]))
        return f"url.value is not a URL that can be sent to: {bad}" if bad else ""
    ref = spec.get("secretRef")
    if not isinstance(ref, Mapping) or not (ref.get("name") and ref.get("key")):
        return "url must be {value: ...} or {secretRef: {name, key}}: secretRef needs name and key"
    return ""


__all__ = ["host_of", "spec_problem", "url_problem"]
