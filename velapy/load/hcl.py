"""The `variable` blocks of a Terraform HCL module → parameters (what `vela def show` lists for a
Terraform ComponentDefinition; KubeVela reads them with terraform-config-inspect).

Only what a parameter table needs is read: each top-level `variable "NAME" { ... }` with its
`type`, `default` and `description`. Comments (`#`, `//`, `/* */`), strings with `${...}`
interpolations and heredocs are skipped correctly, so braces inside them do not count. A default
that is literal data (strings, numbers, booleans, null, lists, maps) is read as data; anything
else is kept as its text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class HclError(Exception):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Variable:
    name: str
    type: str  # the type expression as written ("" when absent)
    default: Any  # data, or NO_DEFAULT
    default_text: str
    description: str
    line: int

    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT


NO_DEFAULT: Any = object()

_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][\w-]*)[ \t]*\n")
_IDENT = re.compile(r"[A-Za-z_][\w-]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def _skip_string(src: str, i: int) -> int:
    """`src[i]` is `"`: the index after the closing quote (interpolations may nest strings)."""
    i += 1
    while i < len(src):
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        if c == "\n":
            break
        if src.startswith("${", i) or src.startswith("%{", i):
            i = _skip_braces(src, i + 1)
            continue
        i += 1
    raise HclError("unterminated string", src.count("\n", 0, i) + 1)


def _skip_braces(src: str, i: int) -> int:
    """`src[i]` is `{`: the index after its matching `}`."""
    depth = 0
    while i < len(src):
        j = _skip_opaque(src, i)
        if j != i:
            i = j
            continue
        c = src[i]
        if c in "{[(":
            depth += 1
        elif c in "}])":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise HclError("unclosed `{`", src.count("\n", 0, i) + 1)


def _skip_opaque(src: str, i: int) -> int:
    """Past a comment, string or heredoc at `i` (or `i` itself): text whose braces do not count."""
    j = _skip_trivia(src, i)
    if j != i:
        return j
    if src.startswith('"', i):
        return _skip_string(src, i)
    m = _HEREDOC.match(src, i)
    return _skip_heredoc(src, m) if m else i


def _skip_heredoc(src: str, m: re.Match[str]) -> int:
    end = re.compile(rf"^[ \t]*{re.escape(m.group(2))}[ \t]*$", re.M).search(src, m.end())
    if end is None:
        raise HclError(f"unterminated heredoc <<{m.group(2)}", src.count("\n", 0, m.start()) + 1)
    return end.end()


def _skip_trivia(src: str, i: int) -> int:
    """Past a comment at `i` (or `i` itself)."""
    if src.startswith("#", i) or src.startswith("//", i):
        j = src.find("\n", i)
        return len(src) if j < 0 else j
    if src.startswith("/*", i):
        j = src.find("*/", i + 2)
        if j < 0:
            raise HclError("unclosed comment", src.count("\n", 0, i) + 1)
        return j + 2
    return i


def variables(src: str) -> list[Variable]:
    """Every top-level `variable` block of an HCL module, in order (HclError when it does not scan)."""
    out: list[Variable] = []
    i = 0
    while i < len(src):
        j = _skip_opaque(src, i)
        if j != i:
            i = j
            continue
        c = src[i]
        if c == "{":
            i = _skip_braces(src, i)
            continue
        if c == "}":
            raise HclError("unexpected `}`", src.count("\n", 0, i) + 1)
        m = re.compile(r'variable\s+"([^"]+)"\s*\{').match(src, i)
        if m and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] in "_-")):
            body_start = m.end() - 1
            end = _skip_braces(src, body_start)
            out.append(_variable(m.group(1), src[body_start + 1:end - 1], src.count("\n", 0, i) + 1))
            i = end
            continue
        i += 1
    return out


def _attributes(body: str) -> dict[str, str]:
    """`name = expr` lines of a block body (the text of each expression)."""
    out: dict[str, str] = {}
    i = 0
    while i < len(body):
        j = _skip_trivia(body, i)
        if j != i:
            i = j
            continue
        if body[i].isspace():
            i += 1
            continue
        m = _IDENT.match(body, i)
        if not m:
            i = _skip_braces(body, i) if body[i] == "{" else i + 1
            continue
        k = m.end()
        while k < len(body) and body[k] in " \t":
            k += 1
        if body.startswith("=", k) and not body.startswith("==", k):
            start = k + 1
            e = start
            while e < len(body) and body[e] != "\n":
                t = _skip_trivia(body, e)
                if t != e:
                    e = t
                    continue
                if body[e] == '"':
                    e = _skip_string(body, e)
                elif (h := _HEREDOC.match(body, e)) is not None:
                    e = _skip_heredoc(body, h)
                elif body[e] in "{[(":
                    e = _skip_braces(body, e)
                else:
                    e += 1
            out[m.group(0)] = _without_comment(body[start:e]).strip()
            i = e
            continue
        # a nested block (`validation { ... }`): skipped
        brace = body.find("{", k)
        i = _skip_braces(body, brace) if brace >= 0 else len(body)
    return out


def _without_comment(text: str) -> str:
    i = 0
    while i < len(text):
        if text[i] == '"':
            i = _skip_string(text, i)
            continue
        if text.startswith("#", i) or text.startswith("//", i):
            return text[:i]
        i += 1
    return text


def _variable(name: str, body: str, line: int) -> Variable:
    attrs = _attributes(body)
    default_text = attrs.get("default", "")
    default = NO_DEFAULT
    if "default" in attrs:
        try:
            default = literal(default_text)
        except ValueError:
            default = default_text
    description = attrs.get("description", "")
    try:
        desc = literal(description) if description else ""
    except ValueError:
        desc = description
    return Variable(name, attrs.get("type", ""), default, default_text,
                    desc if isinstance(desc, str) else description, line)


def literal(text: str) -> Any:
    """An HCL literal expression → data; ValueError for anything else (references, calls, templates)."""
    value, end = _literal(text.strip(), 0)
    if text.strip()[end:].strip():
        raise ValueError(text)
    return value


def _ws(s: str, i: int) -> int:
    while i < len(s):
        if s[i] in " \t\r\n,":
            i += 1
            continue
        j = _skip_trivia(s, i)
        if j == i:
            break
        i = j
    return i


def _literal(s: str, i: int) -> tuple[Any, int]:
    i = _ws(s, i)
    if i >= len(s):
        raise ValueError(s)
    c = s[i]
    if c == '"':
        end = _skip_string(s, i)
        raw = s[i:end]
        if "${" in raw or "%{" in raw:
            raise ValueError(raw)
        return json.loads(raw), end
    if c == "[":
        items: list[Any] = []
        i += 1
        while True:
            i = _ws(s, i)
            if i < len(s) and s[i] == "]":
                return items, i + 1
            v, i = _literal(s, i)
            items.append(v)
    if c == "{":
        obj: dict[str, Any] = {}
        i += 1
        while True:
            i = _ws(s, i)
            if i < len(s) and s[i] == "}":
                return obj, i + 1
            if i < len(s) and s[i] == '"':
                end = _skip_string(s, i)
                key = json.loads(s[i:end])
                i = end
            else:
                m = _IDENT.match(s, i)
                if not m:
                    raise ValueError(s)
                key, i = m.group(0), m.end()
            i = _ws(s, i)
            if i >= len(s) or s[i] not in "=:":
                raise ValueError(s)
            v, i = _literal(s, i + 1)
            obj[key] = v
    m = _NUMBER.match(s, i)
    if m:
        text = m.group(0)
        return (float(text) if any(ch in text for ch in ".eE") else int(text)), m.end()
    m = _IDENT.match(s, i)
    if m and m.group(0) in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[m.group(0)], m.end()
    raise ValueError(s)


def json_type(type_text: str, default: Any) -> dict[str, Any]:
    """A JSON Schema type for a Terraform type expression (or, without one, the default's)."""
    t = type_text.strip()
    head = t.split("(", 1)[0].strip()
    simple = {"string": "string", "number": "number", "bool": "boolean", "list": "array", "set": "array",
              "tuple": "array", "map": "object", "object": "object"}
    if head in simple:
        return {"type": simple[head]}
    if not t and default is not NO_DEFAULT and default is not None:
        for py, js in ((bool, "boolean"), (str, "string"), ((int, float), "number"), (list, "array"),
                       (dict, "object")):
            if isinstance(default, py):
                return {"type": js}
    return {}
