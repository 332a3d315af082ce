"""Text for people → the same text with ANSI colours for a terminal (or unchanged).

Whether to colour is decided per output stream: `--color=always` or `never` say it outright;
`auto` (the default) colours a terminal only, never when `NO_COLOR` is set to anything
(https://no-color.org), and always when `FORCE_COLOR` is set (to anything but `0`) — for CI logs.
What is coloured is decided by the kind of text, line by line, so the uncoloured text is exactly
what velapy prints to a file or a pipe:

- `messages`: the `error:` (red), `warning:` (yellow), `hint:` (cyan) and `note:` (dim) prefixes;
- `changes`: `velapy diff`/`golden` lines — added and new clusters green, removed red, changed
  yellow; `fresh` / `stale` / `updated` of the golden report; lines led by a `+`, `-` or `~` sign;
- `unified`: a unified diff (`+` green, `-` red, `@@` cyan, file headers bold);
- `plan`: the plan tree, its gates (`waits ...`) in bold yellow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

MODES = ("auto", "always", "never")

_RESET = "\x1b[0m"
RED, GREEN, YELLOW, CYAN, BOLD, DIM = "31", "32", "33", "36", "1", "2"


def wanted(mode: str, isatty: bool, env: Mapping[str, str]) -> bool:
    """Whether to colour a stream: `mode` is one of MODES."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    if env.get("NO_COLOR", ""):
        return False
    force = env.get("FORCE_COLOR", "")
    if force and force != "0":
        return True
    return isatty


def style(text: str, *codes: str) -> str:
    """`text` in the given SGR codes (RED, BOLD, ...), reset after."""
    return f"\x1b[{';'.join(codes)}m{text}{_RESET}" if text else text


_PREFIX = re.compile(r"^(?P<indent>\s*)(?P<word>error|warning|hint|note|internal error|interrupted)(?P<rest>:|$)")
_PREFIX_CODES = {"error": (BOLD, RED), "internal error": (BOLD, RED), "interrupted": (RED,), "warning": (BOLD, YELLOW),
                 "hint": (CYAN,), "note": (DIM,)}


def _message_line(line: str) -> str:
    m = _PREFIX.match(line)
    if not m:
        return line
    word = m.group("word")
    return m.group("indent") + style(word + m.group("rest"), *_PREFIX_CODES[word]) + line[m.end():]


_SIGN = re.compile(r"^(\s*)([+\-~])(\s)")
_SIGN_CODES = {"+": GREEN, "-": RED, "~": YELLOW}
_REPORT = {"fresh": GREEN, "stale": RED, "updated": YELLOW}


def _change_line(line: str) -> str:
    m = _SIGN.match(line)
    if m:
        return style(line, _SIGN_CODES[m.group(2)])
    head = line.lstrip()
    word = head.split(" ", 1)[0]
    if word in _REPORT and head.startswith(word + " "):
        indent = line[: len(line) - len(head)]
        return indent + style(word, BOLD, _REPORT[word]) + head[len(word):]
    if line.endswith(("  added", "(new cluster)")):
        return style(line, GREEN)
    if line.endswith(("  removed", "(cluster no longer targeted)")):
        return style(line, RED)
    if " → " in line:
        return style(line, YELLOW)
    if line.startswith("== "):
        return style(line, BOLD)
    return _message_line(line)


def _unified_line(line: str) -> str:
    if line.startswith(("+++", "---")):
        return style(line, BOLD)
    if line.startswith("@@"):
        return style(line, CYAN)
    if line.startswith("+"):
        return style(line, GREEN)
    if line.startswith("-"):
        return style(line, RED)
    return line


_GATE = re.compile(r"(?P<gate>waits (?:for approval first|until resumed|\S+))")


def _plan_line(line: str) -> str:
    return _GATE.sub(lambda m: style(m.group("gate"), BOLD, YELLOW), _message_line(line))


_KINDS: dict[str, Callable[[str], str]] = {"messages": _message_line, "changes": _change_line,
                                           "unified": _unified_line, "plan": _plan_line}
KINDS = tuple(_KINDS)


def paint(text: str, kind: str) -> str:
    """`text` coloured line by line as `kind` (one of KINDS); line breaks unchanged."""
    line_fn = _KINDS[kind]
    return "\n".join(line_fn(line) for line in text.split("\n"))


def plain(text: str) -> str:
    """`text` without ANSI colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


__all__ = ["BOLD", "CYAN", "DIM", "GREEN", "KINDS", "MODES", "RED", "YELLOW", "paint", "plain", "style", "wanted"]
