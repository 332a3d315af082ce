"""A step's `if:` text → a checked condition that evaluates against the phases of finished steps.

KubeVela compiles `if` as a CUE expression over `status.<step>` (id, name, type, phase, message,
reason, failed, succeeded, skipped, timeout, failedAfterRetries, terminate), `inputs` and
`context`. velapy evaluates the part of that language its docs use, and refuses the rest when the
plan is loaded, before anything is applied:

    always
    status.<step>.phase == "succeeded"        status["my-step"].phase != "failed"
    status.<step>.failed | succeeded | skipped | timeout      (booleans)
    context.status.failed | succeeded          (some earlier step failed / none did)
    !x    x && y    x || y    ( ... )    == / != between references and "string", true, false, numbers

`inputs.*` (step outputs) and other references are refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ALWAYS = "always"
STEP_FIELDS = ("id", "name", "type", "phase", "message", "reason", "failed", "succeeded", "skipped", "timeout",
               "failedAfterRetries", "terminate")

_TOKEN = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!()\[\].])
                        |(?P<id>[A-Za-z_$][A-Za-z0-9_$-]*))""", re.VERBOSE)


class ConditionError(Exception):
    """The condition is outside what velapy evaluates (the message says why)."""


@dataclass(frozen=True)
class StepStatus:
    """What an `if` can read about one step."""

    name: str
    type: str
    phase: str  # succeeded | failed | skipped | running | pending | suspending
    message: str = ""
    reason: str = ""

    def field(self, name: str) -> Any:
        if name == "phase":
            return self.phase
        if name in ("name", "id"):
            return self.name
        if name == "type":
            return self.type
        if name == "message":
            return self.message
        if name == "reason":
            return self.reason
        if name == "failed":
            return self.phase == "failed"
        if name == "succeeded":
            return self.phase == "succeeded"
        if name == "skipped":
            return self.phase == "skipped"
        if name == "timeout":
            return self.reason == "Timeout"
        if name in ("failedAfterRetries", "terminate"):
            return False
        raise ConditionError(f"unknown step field {name}")


@dataclass(frozen=True)
class _Ref:
    path: tuple[str, ...]


@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Not:
    arg: Any


@dataclass(frozen=True)
class _Bin:
    op: str
    left: Any
    right: Any


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ConditionError(f"unexpected {text[pos:pos + 12]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise ConditionError(f"expected {value or 'more'}" + (f", found {tok[1]!r}" if tok else " at the end"))
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.or_()
        if self.peek() is not None:
            raise ConditionError(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> Any:
        node = self.and_()
        while (t := self.peek()) and t[1] == "||":
            self.take()
            node = _Bin("||", node, self.and_())
        return node

    def and_(self) -> Any:
        node = self.cmp()
        while (t := self.peek()) and t[1] == "&&":
            self.take()
            node = _Bin("&&", node, self.cmp())
        return node

    def cmp(self) -> Any:
        node = self.unary()
        if (t := self.peek()) and t[1] in ("==", "!="):
            self.take()
            node = _Bin(t[1], node, self.unary())
        return node

    def unary(self) -> Any:
        t = self.peek()
        if t and t[1] == "!":
            self.take()
            return _Not(self.unary())
        if t and t[1] == "(":
            self.take()
            node = self.or_()
            self.take(")")
            return node
        return self.atom()

    def atom(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return _Lit(bytes(text[1:-1], "utf-8").decode("unicode_escape"))
        if kind == "num":
            return _Lit(float(text) if "." in text else int(text))
        if kind != "id":
            raise ConditionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return _Lit(text == "true")
        path = [text]
        while (t := self.peek()) and t[1] in (".", "["):
            self.take()
            if t[1] == ".":
                path.append(self.take()[1])
            else:
                k, s = self.take()
                if k != "str":
                    raise ConditionError("index a name with a quoted string: status[\"my-step\"]")
                path.append(s[1:-1])
                self.take("]")
        return _Ref(tuple(path))


@dataclass(frozen=True)
class Condition:
    """A parsed `if`; `steps()` names the steps it reads."""

    text: str
    tree: Any

    @property
    def always(self) -> bool:
        return self.text.strip() == ALWAYS

    def steps(self) -> list[str]:
        out: list[str] = []

        def walk(n: Any) -> None:
            if isinstance(n, _Ref) and n.path[0] == "status":
                out.append(n.path[1])
            elif isinstance(n, _Not):
                walk(n.arg)
            elif isinstance(n, _Bin):
                walk(n.left)
                walk(n.right)

        walk(self.tree)
        return out

    def evaluate(self, statuses: Mapping[str, StepStatus], earlier: Sequence[StepStatus]) -> bool:
        """The condition's value; a non-boolean result is false (KubeVela skips the step)."""
        if self.always:
            return True
        value = _eval(self.tree, statuses, earlier)
        return value is True


def _eval(n: Any, statuses: Mapping[str, StepStatus], earlier: Sequence[StepStatus]) -> Any:
    if isinstance(n, _Lit):
        return n.value
    if isinstance(n, _Not):
        v = _eval(n.arg, statuses, earlier)
        return (not v) if isinstance(v, bool) else None
    if isinstance(n, _Bin):
        left = _eval(n.left, statuses, earlier)
        if n.op in ("&&", "||"):
            right = _eval(n.right, statuses, earlier)
            if not isinstance(left, bool) or not isinstance(right, bool):
                return None
            return (left and right) if n.op == "&&" else (left or right)
        right = _eval(n.right, statuses, earlier)
        return (left == right) if n.op == "==" else (left != right)
    if isinstance(n, _Ref):
        if n.path[0] == "status":
            st = statuses.get(n.path[1])
            if st is None:
                return None
            return st.field(n.path[2])
        if n.path[:2] == ("context", "status"):
            failed = any(s.phase == "failed" for s in earlier)
            return failed if n.path[2] == "failed" else not failed
    return None


def parse_condition(text: str, step_names: Sequence[str]) -> Condition:
    """Parse and check `text`; ConditionError says what velapy cannot evaluate."""
    if text.strip() == ALWAYS:
        return Condition(text, None)
    tree = _Parser(text).parse()

    def check(n: Any) -> None:
        if isinstance(n, _Ref):
            head = n.path[0]
            if head == "status":
                if len(n.path) != 3:
                    raise ConditionError("read a step's field: status.<step>.phase (or failed, succeeded, skipped, "
                                         "timeout, message, reason)")
                if n.path[1] not in step_names:
                    raise ConditionError(f"no step named {n.path[1]} in this workflow")
                if n.path[2] not in STEP_FIELDS:
                    raise ConditionError(f"a step has no field {n.path[2]} (known: {', '.join(STEP_FIELDS)})")
            elif head == "context" and n.path[1:2] == ("status",):
                if len(n.path) != 3 or n.path[2] not in ("failed", "succeeded"):
                    raise ConditionError("context.status has failed and succeeded")
            elif head == "inputs":
                raise ConditionError("inputs.* need step outputs, which velapy does not pass between steps")
            else:
                raise ConditionError(f"velapy cannot evaluate {'.'.join(n.path)} (it reads status.<step>.<field>, "
                                     "context.status.failed/succeeded and literals)")
        elif isinstance(n, _Not):
            check(n.arg)
        elif isinstance(n, _Bin):
            check(n.left)
            check(n.right)

    check(tree)
    return Condition(text, tree)


__all__ = ["ALWAYS", "Condition", "ConditionError", "StepStatus", "parse_condition"]
