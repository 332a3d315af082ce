"""Secret values → kept out of every message: where they are in a document, and scrubbing them
out of diagnostics.

A Secret value is any value under `data` or `stringData` of a mapping with `kind: Secret`,
wherever that mapping sits (a manifest, a `k8s-objects` component's `properties.objects[i]`, a
hub object under `--resources`). Two defences, both used:

- by position: a message about a value at such a path never quotes it (`is_secret_value_path`);
- by content: every diagnostic of a failed stage is scrubbed of the Secret values of its inputs
  (`secret_strings`, `scrub_error`), which catches messages that quote a whole mapping or a value
  a template copied elsewhere (JSON Schema's own messages, CUE's "conflicting values").

Masking by content replaces a value where it stands as a whole token, not where its letters
happen to be part of a longer name: with a Secret value `SHARD`, `load-test-SHARD` stays as it is,
while `"SHARD"`, `token=SHARD`, `SHARD.` or `SHARD` alone become `<secret>` (`mask`). A token ends
where no letter, digit or `_` follows (nor a `.`/`-` with one of them beyond), or the text ends. Values of LONG_VALUE
characters or more (keys, tokens, passwords) are masked wherever they appear, inside longer words
too: a name containing one of them by chance is all but impossible, and a value a template glued
to a prefix is still hidden. Values shorter than MIN_SCRUBBED characters and the YAML scalar words
in COMMON_WORDS (`true`, `null`, ...) are not searched for in text (they would mask ordinary
words); at a Secret value position they are withheld like any other value.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from velapy.errors import Diagnostic, VelapyError

SECRET_FIELDS = ("data", "stringData")
SHOWN = "<secret>"
WITHHELD = "(the value is withheld: it is under a Secret's data/stringData)"
MIN_SCRUBBED = 3  # shorter values are not searched for in text (they would mangle every message)
LONG_VALUE = 16  # values this long are masked inside longer words too
COMMON_WORDS = frozenset({"true", "false", "null", "none", "yes", "no", "on", "off"})
_NAME_CHAR = re.compile(r"[A-Za-z0-9_.-]")

E = TypeVar("E", bound=VelapyError)


def _is_secret(node: Any) -> bool:
    return isinstance(node, dict) and node.get("kind") == "Secret"


def is_secret_value_path(root: Any, path: Sequence[str | int]) -> bool:
    """Whether `path` (from `root`) goes through `data`/`stringData` of a Secret mapping."""
    node = root
    for step in path:
        if _is_secret(node) and step in SECRET_FIELDS:
            return True
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            return False
    return False


def secret_strings(data: Any) -> set[str]:
    """The text of every scalar under a Secret's data/stringData anywhere in `data`."""
    out: set[str] = set()

    def values(node: Any) -> None:
        if isinstance(node, dict):
            for v in node.values():
                values(v)
        elif isinstance(node, list):
            for v in node:
                values(v)
        elif node is not None and not isinstance(node, bool):
            out.add(str(node))

    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if _is_secret(node):
                for f in SECRET_FIELDS:
                    values(node.get(f))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def _forms(value: str) -> list[str]:
    quoted = json.dumps(value, ensure_ascii=False)[1:-1]
    ascii_quoted = json.dumps(value)[1:-1]
    return list(dict.fromkeys([value, quoted, ascii_quoted, repr(value)[1:-1]]))


def maskable(value: str, min_length: int = MIN_SCRUBBED) -> bool:
    """Whether `value` is searched for in text (see the module docstring)."""
    return len(value) >= min_length and value.lower() not in COMMON_WORDS


def mask(text: str, values: Iterable[str], shown: str = SHOWN, min_length: int = MIN_SCRUBBED) -> str:
    """`text` with each value (as written, JSON- or repr-escaped) replaced by `shown` where it stands
    as a whole token (anywhere, for values of LONG_VALUE characters or more); longest values first."""
    for v in sorted({v for v in values if maskable(v, min_length)}, key=len, reverse=True):
        for form in _forms(v):
            if form and form in text:
                text = _token_pattern(form).sub(shown, text) if len(v) < LONG_VALUE else text.replace(form, shown)
    return text


@functools.lru_cache(maxsize=1024)
def _token_pattern(form: str) -> re.Pattern[str]:
    """`form` not continued by a name on a side where its own edge is a name character: a letter,
    digit or `_` next to it continues the name, and so does `.`/`-` with a letter or digit beyond
    (`orders-api`, `load-test-SHARD`); a sentence's final `.` does not (`the value is SHARD.`)."""
    # an escape such as `\n` before the value (a quoted multi-line text) ends the token before it
    before = r"(?:(?<![A-Za-z0-9_])(?<![A-Za-z0-9_][.-])|(?<=\\[nrt]))" if _NAME_CHAR.match(form[0]) else ""
    after = r"(?![A-Za-z0-9_]|[.-][A-Za-z0-9_])" if _NAME_CHAR.match(form[-1]) else ""
    return re.compile(before + re.escape(form) + after)


def scrub(text: str, values: Iterable[str]) -> str:
    """`text` with each Secret value masked where it stands (`mask`)."""
    return mask(text, values)


def scrub_error(exc: E, values: Iterable[str]) -> E:
    """The same error with its diagnostics scrubbed (the exception itself when nothing changes)."""
    vals = [v for v in values if maskable(v)]
    if not vals:
        return exc
    changed = False
    out: list[Diagnostic] = []
    for d in exc.diagnostics:
        message, hint = scrub(d.message, vals), scrub(d.hint, vals)
        loc = d.location
        where = dataclasses.replace(loc, component=scrub(loc.component, vals), trait=scrub(loc.trait, vals),
                                    path=scrub(loc.path, vals))
        changed = changed or message != d.message or hint != d.hint or where != loc
        out.append(Diagnostic(message, where, hint))
    if not changed:
        return exc
    new = type(exc).__new__(type(exc))
    VelapyError.__init__(new, out)
    return new


__all__ = ["SHOWN", "WITHHELD", "is_secret_value_path", "mask", "maskable", "scrub", "scrub_error",
           "secret_strings"]
