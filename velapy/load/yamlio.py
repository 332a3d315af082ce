"""YAML in and out: user files → located plain data; plain data → `vela dry-run` YAML text.

Reading: the text of a file → `Document`s holding plain Python data (dict/list/str/int/float/bool/
None) plus the 1-based line and column of every node, so any later stage can blame `file:line:col`
for a JSON path. Scalars are read the way Kubernetes reads them (sigs.k8s.io/yaml, which parses with
go-yaml v2, YAML 1.1 flavoured), not the way PyYAML's SafeLoader does:

* plain `y Y yes Yes YES on On ON true True TRUE` are true and their `n/no/off/false` partners false
  (so an unquoted `on` is a boolean, and as a mapping key it becomes the string "true");
* `~ null Null NULL` and an empty value are null;
* integers as Go's `strconv.ParseInt(s, 0, 64)` after dropping `_` (`0x1F`, `0o17`, `017` octal,
  `0b101`, `+5`), then unsigned 64-bit, then floats (`1e3`, `.5`, `.inf`, `.nan`);
* base-60 numbers (`1:20`) and timestamps (`2024-01-02`) stay strings;
* `<<` merge keys apply in document order (a later merge overrides earlier keys, as in go-yaml v2);
* non-string keys become strings (`1` → "1", `true` → "true", floats in Go's 32-bit shortest form);
  a null or collection key, a duplicate key, bad YAML and unreadable files are `InputError`s.

Writing: plain data → the bytes `sigs.k8s.io/yaml.Marshal` prints (Go `json.Marshal`, read back by
go-yaml v2, then go-yaml v2's emitter): keys in go-yaml's natural order, two-space indentation,
sequences level with their key, `{}`/`[]` for empty collections, strings that would read back as
another type double-quoted, multi-line strings as `|` blocks, long scalars folded after column 80.
The emitter is PyYAML's (a port of libyaml, like go-yaml's) with the scalar analysis, style choice,
simple-key test and the four scalar writers redone to follow go-yaml v2 where the two differ.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import functools
import io
import json
import math
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.emitter import Emitter, ScalarAnalysis
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from velapy.errors import Diagnostic, InputError, Location
from velapy.load import limits, redact

__all__ = [
    "Document",
    "dump_yaml",
    "dump_yaml_all",
    "format_path",
    "load_documents",
    "load_file",
]

# --------------------------------------------------------------------------------------------
# Scalar resolution: what a plain (unquoted) scalar means to go-yaml v2.
# --------------------------------------------------------------------------------------------

_STR, _BOOL, _NULL, _INT, _FLOAT, _TIME = "str", "bool", "null", "int", "float", "timestamp"

_WORDS: dict[str, tuple[str, Any]] = {}
for _word in "y Y yes Yes YES true True TRUE on On ON".split():
    _WORDS[_word] = (_BOOL, True)
for _word in "n N no No NO false False FALSE off Off OFF".split():
    _WORDS[_word] = (_BOOL, False)
for _word in ("", "~", "null", "Null", "NULL"):
    _WORDS[_word] = (_NULL, None)
for _word in (".nan", ".NaN", ".NAN"):
    _WORDS[_word] = (_FLOAT, math.nan)
for _word in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"):
    _WORDS[_word] = (_FLOAT, math.inf)
for _word in ("-.inf", "-.Inf", "-.INF"):
    _WORDS[_word] = (_FLOAT, -math.inf)

# go-yaml only looks further at scalars starting with one of these characters.
_NUMBER_START = frozenset("+-0123456789")
_WORD_START = frozenset("yYnNtTfFoO~")
# Go's ParseFloat, which go-yaml applies as is to scalars starting with ".", takes `_` between digits.
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+(?:_[0-9]+)*)?")
_YAML_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_BASE60 = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:[Tt]([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?(Z|[-+]([0-9]{2}):([0-9]{2}))"
    r"| ([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:[.,][0-9]+)?)?"
)
_DIGIT_VALUE = {c: int(c, 36) for c in "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"}
_INT64_MIN, _INT64_LIMIT, _UINT64_LIMIT = -(1 << 63), 1 << 63, 1 << 64


def _parse_go_uint(text: str) -> int | None:
    """`strconv.ParseUint(text, 0, 64)`: base from the prefix (0x, 0o, 0b, leading 0 = octal)."""
    if not text:
        return None
    base = 10
    if text[0] == "0":
        prefix = text[1:2].lower()
        if len(text) >= 3 and prefix in ("b", "o", "x"):
            base, text = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
        else:
            base, text = 8, text[1:]
    number = 0
    for char in text:
        digit = _DIGIT_VALUE.get(char)
        if digit is None or digit >= base:
            return None
        number = number * base + digit
    return number if number < _UINT64_LIMIT else None


def _parse_go_int(text: str) -> int | None:
    """`strconv.ParseInt(text, 0, 64)`: an optional sign, then as `_parse_go_uint`, within int64."""
    negative = text[:1] == "-"
    if text[:1] in ("+", "-"):
        text = text[1:]
        if not text:
            return None
    magnitude = _parse_go_uint(text)
    if magnitude is None:
        return None
    if negative:
        return -magnitude if magnitude <= _INT64_LIMIT else None
    return magnitude if magnitude < _INT64_LIMIT else None


def _is_timestamp(text: str) -> bool:
    """Whether Go's `time.Parse` accepts `text` in one of go-yaml v2's four timestamp layouts.

    As current Go parses them (KubeVela is built with Go 1.2x): one- or two-digit fields, any
    number of fraction digits after `.` or `,`, zone offsets up to 24:60, real calendar days.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(g) for g in match.group(1, 2, 3))
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return False
    clock = match.group(4, 5, 6) if match.group(4) else match.group(10, 11, 12)
    if clock[0] is not None:
        hour, minute, second = (int(g) for g in clock)
        if hour >= 24 or minute >= 60 or second >= 60:
            return False
    # Zone offsets of 24 hours or 60 minutes are accepted, as Go does.
    return match.group(8) is None or (int(match.group(8)) <= 24 and int(match.group(9)) <= 60)


def _resolve_plain(text: str, *, timestamps: bool = True) -> tuple[str, Any]:
    """(kind, value) of an untagged plain scalar, following go-yaml v2's resolve table."""
    if not text:
        return _NULL, None
    first = text[0]
    if first not in _NUMBER_START and first not in _WORD_START and first != ".":
        return _STR, text
    known = _WORDS.get(text)
    if known is not None:
        return known
    if first in _WORD_START:
        return _STR, text
    if first == ".":
        if _DOT_FLOAT.fullmatch(text):
            number = float(text.replace("_", ""))
            if not math.isinf(number):  # Go reports overflow as an error: the scalar stays a string
                return _FLOAT, number
        return _STR, text
    if timestamps and _is_timestamp(text):
        return _TIME, text
    digits = text.replace("_", "")
    integer = _parse_go_int(digits)
    if integer is None:
        integer = _parse_go_uint(digits)
    if integer is not None:
        return _INT, integer
    if _YAML_FLOAT.fullmatch(digits):
        number = float(digits)
        if not math.isinf(number):
            return _FLOAT, number
    return _STR, text


def _plain_reads_back_as_string(text: str) -> bool:
    """go-yaml's test for leaving a string unquoted: it must resolve to a string, not base 60."""
    first = text[:1]
    if first and first not in _NUMBER_START and first not in _WORD_START and first != ".":
        return True  # the common case, decided without any table look-up
    if _resolve_plain(text)[0] != _STR:
        return False
    return not (first in _NUMBER_START and ":" in text and _BASE60.fullmatch(text))


# --------------------------------------------------------------------------------------------
# Numbers as Go prints them.
# --------------------------------------------------------------------------------------------


def _decimal_digits(number: float) -> tuple[str, int]:
    """Shortest round-trip digits of |number| and the decimal point position (0.DIGITS × 10^dp)."""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    joined = whole + fraction
    digits = joined.lstrip("0")
    point = len(whole) + (int(exponent) if exponent else 0) - (len(joined) - len(digits))
    return digits.rstrip("0"), point


def _format_go_g(negative: bool, digits: str, point: int) -> str:
    """`strconv.FormatFloat(f, 'g', -1, _)` from shortest digits: %e below 1e-4 or from 1e+06 up."""
    sign = "-" if negative else ""
    if not digits:
        return sign + "0"
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _float_text(number: float) -> str:
    """How a float64 leaves sigs.k8s.io/yaml: through Go's JSON text, then go-yaml's reading of it.

    `json.Marshal` writes whole numbers below 1e21 without a point or exponent, and go-yaml reads
    those back as integers when they fit 64 bits; everything else is printed with Go's `%g`.
    """
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"cannot write {number!r}: JSON (and so Kubernetes YAML) has no such number")
    digits, point = _decimal_digits(number)
    if not digits:
        return "0"
    if point >= len(digits) and abs(number) < 1e21:
        integer = int(digits + "0" * (point - len(digits)))
        if number < 0:
            integer = -integer
        if _INT64_MIN <= integer < _UINT64_LIMIT:
            return str(integer)
    return _format_go_g(number < 0, digits, point)


def _int_text(number: int) -> str:
    """An integer as go-yaml reads back Go's JSON for it: beyond 64 bits it becomes a float."""
    if _INT64_MIN <= number < _UINT64_LIMIT:
        return str(number)
    try:
        return _float_text(float(number))
    except OverflowError:
        return str(number)


def _float32_key_text(number: float) -> str:
    """A float mapping key as sigs.k8s.io/yaml names it: `FormatFloat(k, 'g', -1, 32)`."""
    if math.isnan(number):
        return ".nan"
    if math.isinf(number) or abs(number) > 3.4028234663852886e38:
        return ".inf" if number > 0 else "-.inf"
    single = struct.unpack("f", struct.pack("f", number))[0]
    if single == 0:
        return "-0" if math.copysign(1.0, single) < 0 else "0"
    for precision in range(1, 10):
        candidate = f"{single:.{precision - 1}e}"
        if struct.unpack("f", struct.pack("f", float(candidate)))[0] == single:
            break
    digits, point = _decimal_digits(float(candidate))
    return _format_go_g(single < 0, digits, point)


# --------------------------------------------------------------------------------------------
# Key order: go-yaml v2 sorts mapping keys "naturally" (digit runs by value, letters after marks).
# --------------------------------------------------------------------------------------------


def _wrap_int64(number: int) -> int:
    return (number + _INT64_LIMIT) % _UINT64_LIMIT - _INT64_LIMIT


def _digit_run(text: str, start: int, seed: int) -> tuple[int, int]:
    """Value (with Go's int64 wrap-around) and end of the digit run at `start`."""
    end, value = start, seed
    while end < len(text) and text[end].isdecimal():
        value = _wrap_int64(value * 10 + ord(text[end]) - 48)
        end += 1
    return value, end


def _go_key_less(left: str, right: str) -> bool:
    """go-yaml v2's ordering of two string keys (its `keyList.Less`)."""
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        if a == b:
            continue
        a_letter, b_letter = a.isalpha(), b.isalpha()
        if a_letter and b_letter:
            return a < b
        if a_letter or b_letter:
            return b_letter
        # A run of digits compares by value; a nonzero digit before the difference keeps
        # leading zeros significant.
        seed = 0
        if a == "0" or b == "0":
            back = index - 1
            while back >= 0 and left[back].isdecimal():
                if left[back] != "0":
                    seed = 1
                    break
                back -= 1
        a_value, a_end = _digit_run(left, index, seed)
        b_value, b_end = _digit_run(right, index, seed)
        if a_value != b_value:
            return a_value < b_value
        if a_end != b_end:
            return a_end < b_end
        return a < b
    return len(left) < len(right)


def _go_sorted(keys: Iterable[str]) -> list[str]:
    """`keys` in go-yaml's order.

    That order is not transitive for some key sets (`x1y < x2y < x10y < x1y`); go-yaml then
    prints whatever its sort makes of Go's random map order, and we print one fixed order.
    """
    ordered = sorted(keys)
    # Code point order agrees with go-yaml's for most keys; check the neighbours before paying
    # for a comparison sort.
    if all(not _go_key_less(ordered[i + 1], ordered[i]) for i in range(len(ordered) - 1)):
        return ordered
    return sorted(ordered, key=functools.cmp_to_key(_compare_keys))


def _compare_keys(left: str, right: str) -> int:
    if _go_key_less(left, right):
        return -1
    return 1 if _go_key_less(right, left) else 0


# --------------------------------------------------------------------------------------------
# Writing.
# --------------------------------------------------------------------------------------------

_BREAKS = "\r\n\x85\u2028\u2029"
# libyaml's "printable" as go-yaml v2 tests it on UTF-8: no C1 controls (so no NEL), no
# characters outside the Basic Multilingual Plane, no BOM.
_NOT_PRINTABLE = re.compile(r"[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_PLAIN_SAFE = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./=+-]*")
_FLOW_MARK_INSIDE = re.compile(r"[,?\[\]{}:]")
_COLON_BEFORE_BLANK = re.compile(r":(?:[ \t]|\Z)")
_HASH_AFTER_BLANK = re.compile(r"[ \t\r\n\x85\u2028\u2029\x00]#")
_BREAK_THEN_SPACE = re.compile(r"[\r\n\x85\u2028\u2029] ")
_SPACE_THEN_BREAK = re.compile(r" [\r\n\x85\u2028\u2029]")
_DOUBLE_QUOTED_RUN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]+")
_FLOWING_PIECES = re.compile(r"[^ \r\n\x85\u2028\u2029]+| |[\r\n\x85\u2028\u2029]")
_LITERAL_PIECES = re.compile(r"[^\r\n\x85\u2028\u2029]+|[\r\n\x85\u2028\u2029]")
_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}
_LEADING_MARKS = frozenset("#,[]{}&*!|>'\"%@`")
_SIMPLE_KEY_MAX_BYTES = 128


def _escape(char: str) -> str:
    short = _ESCAPES.get(char)
    if short is not None:
        return "\\" + short
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _analyze(text: str) -> ScalarAnalysis:
    """Which styles can carry `text`, by go-yaml v2's rules (its `yaml_emitter_analyze_scalar`).

    Differs from PyYAML's: CR is a line break, NEL and astral characters are not printable, and
    only a space or tab after `:`/`-`/`?` makes it an indicator.
    """
    if not text:
        return ScalarAnalysis(text, True, False, False, True, True, True, False)
    if _PLAIN_SAFE.fullmatch(text):
        return ScalarAnalysis(text, False, False, True, True, True, True, True)
    first = text[0]
    followed_by_blank = len(text) == 1 or text[1] in " \t"
    flow_marks = block_marks = text.startswith(("---", "..."))
    if first in _LEADING_MARKS or (first == "-" and followed_by_blank):
        flow_marks = block_marks = True
    elif first in "?:":
        flow_marks = True
        block_marks = block_marks or followed_by_blank
    rest = text[1:]
    if _FLOW_MARK_INSIDE.search(rest):
        flow_marks = True
    if _COLON_BEFORE_BLANK.search(rest) or _HASH_AFTER_BLANK.search(text):
        flow_marks = block_marks = True
    line_breaks = any(char in text for char in _BREAKS)
    special = _NOT_PRINTABLE.search(text) is not None
    leading = first == " " or first in _BREAKS
    trailing_space = text[-1] == " "
    trailing = trailing_space or text[-1] in _BREAKS
    break_space = _BREAK_THEN_SPACE.search(text) is not None
    space_break = _SPACE_THEN_BREAK.search(text) is not None

    plain = not (leading or trailing or break_space or space_break or special or line_breaks)
    return ScalarAnalysis(
        text,
        False,
        line_breaks,
        plain and not flow_marks,
        plain and not block_marks,
        not (break_space or space_break or special),
        True,
        not (trailing_space or space_break or special),
    )


class _GoEmitter(Emitter):
    """PyYAML's event-driven emitter with go-yaml v2's scalar decisions and writers."""

    def analyze_scalar(self, scalar: str) -> ScalarAnalysis:
        return _analyze(scalar)

    def check_empty_document(self) -> bool:
        return False  # go-yaml never writes `---` for a first document, whatever it holds

    def check_simple_key(self) -> bool:
        event = self.event
        if isinstance(event, ScalarEvent):
            if self.analysis is None:
                self.analysis = self.analyze_scalar(event.value)
            if self.analysis.multiline:
                return False
            return len(event.value.encode("utf-8", "surrogatepass")) <= _SIMPLE_KEY_MAX_BYTES
        if isinstance(event, SequenceStartEvent):
            return self.check_empty_sequence()
        if isinstance(event, MappingStartEvent):
            return self.check_empty_mapping()
        return isinstance(event, AliasEvent)

    def choose_scalar_style(self) -> str:
        event = self.event
        assert isinstance(event, ScalarEvent)
        if self.analysis is None:
            self.analysis = self.analyze_scalar(event.value)
        analysis = self.analysis
        style = event.style or ""  # what the encoder asked for; "" = plain
        if self.simple_key_context and analysis.multiline:
            style = '"'
        if style == "":
            if not (analysis.allow_flow_plain if self.flow_level else analysis.allow_block_plain):
                style = "'"
            if analysis.empty and (self.flow_level or self.simple_key_context):
                style = "'"
        if style == "'" and not analysis.allow_single_quoted:
            style = '"'
        if style in ("|", ">") and (not analysis.allow_block or self.flow_level or self.simple_key_context):
            style = '"'
        return style

    def _put(self, text: str) -> None:
        self.column += len(text)
        self.stream.write(text)

    def _put_break(self, char: str) -> None:
        self.write_line_break(char)

    def write_plain(self, text: str, split: bool = True) -> None:
        if not self.whitespace:
            self._put(" ")
        if " " not in text and not any(char in text for char in _BREAKS):
            self._put(text)
        else:
            self._write_flowing(text, split, quote=None)
        self.whitespace = False
        self.indention = False

    def write_single_quoted(self, text: str, split: bool = True) -> None:
        self.write_indicator("'", True)
        self._write_flowing(text, split, quote="'")
        self.write_indicator("'", False)

    def _write_flowing(self, text: str, split: bool, quote: str | None) -> None:
        """Plain and single-quoted bodies: fold at a lone space past the width, keep breaks."""
        spaces = breaks = False
        last = len(text) - 1
        for match in _FLOWING_PIECES.finditer(text):
            chunk, index = match.group(), match.start()
            if chunk == " ":
                lone = index == last or text[index + 1] != " "
                inside = quote is None or 0 < index < last
                if split and not spaces and self.column > self.best_width and lone and inside:
                    self.write_indent()
                else:
                    self._put(" ")
                spaces = True
            elif chunk in _BREAKS:
                if not breaks and chunk == "\n":
                    self._put_break("\n")
                self._put_break(chunk)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                if quote is not None:
                    chunk = chunk.replace(quote, quote + quote)
                self._put(chunk)
                self.indention = False
                spaces = breaks = False

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        self.write_indicator('"', True)
        # go-yaml tests for a byte order mark at the start of the whole value on every
        # character, so such a value comes out fully escaped.
        escape_all = text.startswith("\ufeff")
        spaces = False
        last = len(text) - 1
        index = 0
        while index <= last:
            char = text[index]
            if not escape_all:
                run = _DOUBLE_QUOTED_RUN.match(text, index)
                if run is not None:
                    self._put(run.group())
                    index = run.end()
                    spaces = False
                    continue
            if char == " " and not escape_all:
                if split and not spaces and self.column > self.best_width and 0 < index < last:
                    self.write_indent()
                    if text[index + 1] == " ":
                        self._put("\\")
                else:
                    self._put(" ")
                spaces = True
            else:
                self._put(_escape(char))
                spaces = False
            index += 1
        self.write_indicator('"', False)

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", True)
        if text and (text[0] == " " or text[0] in _BREAKS):
            self.write_indicator(str(self.best_indent), False)
        if not text or text[-1] not in _BREAKS:
            self.write_indicator("-", False)
        elif len(text) == 1 or text[-2] in _BREAKS:
            self.write_indicator("+", False)
        self._put_break("\n")
        breaks = True
        for match in _LITERAL_PIECES.finditer(text):
            chunk = match.group()
            if chunk in _BREAKS:
                self._put_break(chunk)
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self._put(chunk)
                self.indention = False
                breaks = False


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _float_text(key)
    raise TypeError(f"cannot write a mapping key of type {type(key).__name__}")


def _string_event(text: str) -> ScalarEvent:
    if "\n" in text:
        style: str | None = "|"
    elif _plain_reads_back_as_string(text):
        style = None
    else:
        style = '"'
    return ScalarEvent(None, None, (True, True), text, style=style)


def _plain_event(text: str) -> ScalarEvent:
    return ScalarEvent(None, None, (True, True), text)


def _collect_events(value: Any, events: list[Event]) -> None:
    """The events go-yaml's encoder would produce for `value` after its trip through JSON."""
    if isinstance(value, str):
        events.append(_string_event(value))
    elif value is None:
        events.append(_plain_event("null"))
    elif isinstance(value, bool):
        events.append(_plain_event("true" if value else "false"))
    elif isinstance(value, int):
        events.append(_plain_event(_int_text(value)))
    elif isinstance(value, float):
        events.append(_plain_event(_float_text(value)))
    elif isinstance(value, Mapping):
        entries = value if all(isinstance(k, str) for k in value) else {_key_text(k): v for k, v in value.items()}
        events.append(MappingStartEvent(None, None, True, flow_style=False))
        for key in _go_sorted(entries):
            events.append(_string_event(key))
            _collect_events(entries[key], events)
        events.append(MappingEndEvent())
    elif isinstance(value, list | tuple):
        events.append(SequenceStartEvent(None, None, True, flow_style=False))
        for item in value:
            _collect_events(item, events)
        events.append(SequenceEndEvent())
    else:
        raise TypeError(f"cannot write a value of type {type(value).__name__} as YAML")


def dump_yaml(obj: Any, memo: Memo | None = None) -> str:
    """`obj` (plain data) as the YAML text sigs.k8s.io/yaml.Marshal produces for it.

    Raises TypeError for values JSON cannot hold and ValueError for NaN or infinities (which
    Go's `json.Marshal` refuses). With a `memo` (a dict the caller keeps for a batch of dumps),
    a nested value shared by several dumped objects (the same Python object, as the clusters of
    one placement share their rendered `spec`) is written once; nothing in it may change meanwhile.
    """
    fast = _fast_dump(obj, memo)
    return fast if fast is not None else _emitter_dump(obj)


def _emitter_dump(obj: Any) -> str:
    """`dump_yaml` through the full event emitter (every shape, every scalar)."""
    events: list[Event] = [StreamStartEvent(), DocumentStartEvent(explicit=False)]
    _collect_events(obj, events)
    events.append(DocumentEndEvent(explicit=False))
    out = io.StringIO()
    emitter = _GoEmitter(out, indent=2, width=80, allow_unicode=True, line_break="\n")
    for event in events:
        emitter.emit(event)
    emitter.open_ended = False  # go-yaml never closes a stream with `...`
    emitter.emit(StreamEndEvent())
    return out.getvalue()


# The fast writer: the common shape of Kubernetes objects (a non-empty mapping root; printable
# ASCII scalars that need no literal block; keys short enough to be simple) written straight to
# text, with the same decisions the emitter above makes; a string long enough to fold is written by
# the emitter's own scalar writer (`_fast_folded`). Anything else makes it give up (returns None)
# and the emitter writes the whole document. tests/test_yamlio.py checks both writers agree.


class _Slow(Exception):
    """This document needs the full emitter."""


_FOLD_WIDTH = 80  # the emitter's best_width: a space past this column may fold the line


@functools.lru_cache(maxsize=65536)
def _fast_scalar(text: str, is_key: bool) -> tuple[str, int]:
    """(`text` as written in block context, whether that could fold: 1 if it holds a space)."""
    if not (text.isascii() and text.isprintable()):
        raise _Slow
    style = "" if _plain_reads_back_as_string(text) else '"'
    analysis = _analyze(text)
    if style == "" and (not analysis.allow_block_plain or (analysis.empty and is_key)):
        style = "'"
    if style == "'" and not analysis.allow_single_quoted:
        style = '"'
    if style == "":
        body = text
    elif style == "'":
        body = "'" + text.replace("'", "''") + "'"
    else:
        body = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if is_key and len(text) > _SIMPLE_KEY_MAX_BYTES:  # ASCII: characters are bytes
        raise _Slow
    return body, int(" " in text)


@functools.lru_cache(maxsize=4096)
def _fast_plain(text: str) -> tuple[str, int]:
    """A number's text (written plain, as the emitter writes a plain scalar event)."""
    if not _analyze(text).allow_block_plain:
        raise _Slow
    return text, int(" " in text)


def _fast_value(value: Any) -> tuple[str, int] | None:
    """A scalar's text and fold flag; None for a collection."""
    if isinstance(value, str):
        return _fast_scalar(value, False)
    if value is None:
        return "null", 0
    if isinstance(value, bool):
        return ("true" if value else "false"), 0
    if isinstance(value, int):
        return _fast_plain(_int_text(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _Slow
        return _fast_plain(_float_text(value))
    if isinstance(value, Mapping | list | tuple):
        return None
    raise _Slow


@functools.lru_cache(maxsize=4096)
def _fast_folded(text: str, column: int, indent: int, indention: bool) -> str:
    """A string scalar that may fold (a space past the width), from its leading space on: written
    by the emitter's own scalar writer, in the state the emitter is in at that point (the column
    after `:` or `-`, the indent of its continuation lines)."""
    if not isinstance(text, str):  # numbers and the like never hold a space
        raise _Slow
    style = _fast_scalar(text, False)[0][:1]
    out = io.StringIO()
    emitter = _GoEmitter(out, indent=2, width=_FOLD_WIDTH, allow_unicode=True, line_break="\n")
    emitter.column, emitter.indent, emitter.whitespace, emitter.indention = column, indent, False, indention
    if style == "'":
        emitter.write_single_quoted(text, True)
    elif style == '"':
        emitter.write_double_quoted(text, True)
    else:
        emitter.write_plain(text, True)
    return out.getvalue()


Memo = dict[tuple[int, int], tuple[Any, str]]  # (id(value), indent) → (value, its text)


def _fast_mapping(value: Mapping[Any, Any], indent: int, inline: bool, out: list[str], memo: Memo | None) -> None:
    entries = value if all(isinstance(k, str) for k in value) else {_key_text(k): v for k, v in value.items()}
    pad = " " * indent
    for key in _go_order(tuple(entries)):
        if inline:
            inline = False
        else:
            out.append(pad)
        ktext = _fast_scalar(key, True)[0]
        out.append(ktext)
        item = entries[key]
        scalar = _fast_value(item)
        if scalar is not None:
            text, folds = scalar
            if folds and indent + len(ktext) + 2 + len(text) > _FOLD_WIDTH:
                out.append(":" + _fast_folded(item, indent + len(ktext) + 1, indent + 2, False) + "\n")
                continue
            out.append(": " + text + "\n")
        elif not item:
            out.append(": {}\n" if isinstance(item, Mapping) else ": []\n")
        else:
            out.append(":\n")
            nested = indent + 2 if isinstance(item, Mapping) else indent
            if memo is None:
                _fast_block(item, nested, out, None)
                continue
            hit = memo.get((id(item), nested))
            if hit is not None and hit[0] is item:
                out.append(hit[1])
                continue
            part: list[str] = []
            _fast_block(item, nested, part, memo)
            text = "".join(part)
            memo[(id(item), nested)] = (item, text)
            out.append(text)


def _fast_block(item: Any, indent: int, out: list[str], memo: Memo | None) -> None:
    if isinstance(item, Mapping):
        _fast_mapping(item, indent, False, out, memo)
    else:
        _fast_sequence(item, indent, False, out, memo)


def _fast_sequence(value: Sequence[Any], indent: int, inline: bool, out: list[str], memo: Memo | None) -> None:
    pad = " " * indent
    for item in value:
        inline_item = inline
        if inline:
            inline = False
            out.append("-")
        else:
            out.append(pad + "-")
        scalar = _fast_value(item)
        if scalar is not None:
            text, folds = scalar
            if folds and indent + 2 + len(text) > _FOLD_WIDTH:
                out.append(_fast_folded(item, indent + 1, indent + 2, not inline_item) + "\n")
                continue
            out.append(" " + text + "\n")
        elif not item:
            out.append(" {}\n" if isinstance(item, Mapping) else " []\n")
        elif isinstance(item, Mapping):
            out.append(" ")
            _fast_mapping(item, indent + 2, True, out, memo)
        else:
            out.append(" ")
            _fast_sequence(item, indent + 2, True, out, memo)


@functools.lru_cache(maxsize=8192)
def _go_order(keys: tuple[str, ...]) -> list[str]:
    return _go_sorted(keys)


def _fast_dump(obj: Any, memo: Memo | None = None) -> str | None:
    if not isinstance(obj, Mapping) or not obj:
        return None
    out: list[str] = []
    try:
        _fast_mapping(obj, 0, False, out, memo)
    except _Slow:
        return None
    return "".join(out)


def dump_yaml_all(objs: Sequence[Any]) -> str:
    """Each object dumped as by `dump_yaml`, joined by `---` lines."""
    return "---\n".join(dump_yaml(obj) for obj in objs)


# --------------------------------------------------------------------------------------------
# Reading.
# --------------------------------------------------------------------------------------------

_PLAIN_TAG = "velapy:plain"  # marks untagged plain scalars, which we resolve ourselves
_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAG, _BINARY_TAG = _YAML_TAG + "str", _YAML_TAG + "binary"
_TYPED_TAGS = {
    _YAML_TAG + "bool": _BOOL,
    _YAML_TAG + "int": _INT,
    _YAML_TAG + "float": _FLOAT,
    _YAML_TAG + "null": _NULL,
    _YAML_TAG + "timestamp": _TIME,
}


class _PlainMarkingResolver:
    """Tags every untagged plain scalar `_PLAIN_TAG` and every other untagged scalar `!!str`."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _PLAIN_TAG if implicit[0] else _STR_TAG
        if kind is SequenceNode:
            return _YAML_TAG + "seq"
        return _YAML_TAG + "map"


class _PureComposer(_PlainMarkingResolver, yaml.BaseLoader):
    """Pure-Python parser; its error messages are the ones we show."""


_COMPOSERS: tuple[type[Any], ...] = (_PureComposer,)
if yaml.__with_libyaml__:

    class _FastComposer(_PlainMarkingResolver, yaml.CBaseLoader):
        """libyaml's parser, used first for speed."""

    _COMPOSERS = (_FastComposer, _PureComposer)


def _compose_with(composer: type[Any], text: str) -> list[Node]:
    loader = composer(text)
    try:
        nodes: list[Node] = []
        while loader.check_node():
            nodes.append(loader.get_node())
        return nodes
    finally:
        loader.dispose()


def _line_column(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


# PyYAML names tokens like `<block end>` in its messages; say what they are.
_TOKEN_WORDS = {
    "<block end>": "the end of the indented block",
    "<block mapping start>": "the start of a mapping",
    "<block sequence start>": "the start of a list",
    "<stream end>": "the end of the file",
    "<document start>": "'---'",
    "<document end>": "'...'",
    "<scalar>": "a value",
    "<alias>": "an alias",
    "<anchor>": "an anchor",
    "<tag>": "a tag",
}
_TOKEN_NAME = re.compile("'?(" + "|".join(re.escape(name) for name in _TOKEN_WORDS) + ")'?")


def _plain_words(problem: str) -> str:
    return _TOKEN_NAME.sub(lambda match: _TOKEN_WORDS[match.group(1)], problem)


def _starts_its_line(text: str, line: int, column: int) -> bool:
    lines = text.split("\n")
    return line < len(lines) and column == len(lines[line]) - len(lines[line].lstrip(" "))


def _syntax_error(error: yaml.YAMLError, text: str, file: str) -> InputError:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "unreadable input"
        message = f"invalid YAML: {_plain_words(problem)}"
        if error.context and error.problem and error.context_mark is not None:
            context_mark = error.context_mark
            message += f" ({error.context} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        hint = ""
        if "<block end>" in problem and mark is not None and _starts_its_line(text, mark.line, mark.column):
            hint = "check the indentation of this line against the lines above"
        return InputError([Diagnostic(message, Location(file=file, line=line, column=column), hint)])
    if isinstance(error, ReaderError):
        line, column = _line_column(text, error.position)
        message = f"invalid YAML: character #x{error.character:04x} is not allowed ({error.reason})"
        return InputError(message, Location(file=file, line=line, column=column))
    return InputError(f"invalid YAML: {error}", Location(file=file))


def _compose(text: str, file: str) -> list[Node]:
    first_error: yaml.YAMLError | None = None
    for composer in _COMPOSERS:
        try:
            nodes = _compose_with(composer, text)
        except yaml.YAMLError as error:
            if "maximum nesting depth" in str(error):  # libyaml's own bound, located: say it plainly
                mark = getattr(error, "problem_mark", None)
                where = Location(file=file, line=mark.line + 1, column=mark.column + 1) if mark else Location(file=file)
                raise InputError([limits.exceeded("the YAML nests too deeply: levels", 1000,
                                                  limits.current().yaml_depth, "yaml_depth", where)]) from None
            # The pure parser runs again only to word the error the same way everywhere.
            first_error = first_error or error
            if composer is _PureComposer:
                raise _syntax_error(error, text, file) from None
            continue
        if first_error is None:
            return nodes
        break  # only the fast parser failed: report what it said
    assert first_error is not None
    raise _syntax_error(first_error, text, file) from None


@dataclass(frozen=True, slots=True)
class _Spot:
    """Where one node (or mapping entry) starts, and where its children start."""

    line: int
    column: int
    fields: Mapping[str, _Spot] | None = None
    items: Sequence[_Spot] | None = None


class _Builder:
    """Turns composed nodes into plain data and `_Spot` trees, gathering every problem found."""

    def __init__(self, file: str, keep_last_duplicate: bool = False) -> None:
        self.file = file
        self.problems: list[Diagnostic] = []
        # a duplicated key: an error, or (definition files, read as KubeVela reads them) the last wins
        # with a warning naming both lines
        self.keep_last_duplicate = keep_last_duplicate
        self.warnings: list[Diagnostic] = []
        # keys written as a YAML 1.1 boolean word (`y: 1` is the key "true"): path → the word
        self.word_keys: dict[tuple[str | int, ...], str] = {}
        self._built: set[int] = set()
        self._active: set[int] = set()
        self._expanded = 0
        lim = limits.current()
        self._max_nodes, self._max_depth = lim.yaml_nodes, lim.yaml_depth
        self.quoted: list[tuple[int, tuple[str | int, ...], str]] = []  # problems that quote a value

    def withhold_secrets(self, data: Any) -> None:
        """Reword the problems of this document that quote a value under a Secret's data/stringData."""
        for index, path, wanted in self.quoted:
            if redact.is_secret_value_path(data, path):
                old = self.problems[index]
                self.problems[index] = Diagnostic(f"cannot read this value as !!{wanted} {redact.WITHHELD}",
                                                  old.location, old.hint)
        self.quoted.clear()

    def problem(self, message: str, node: Node, path: Sequence[str | int]) -> None:
        line, column = _node_start(node)
        where = Location(file=self.file, line=line, column=column, path=format_path(path))
        self.problems.append(Diagnostic(message, where))

    def build(self, node: Node, path: tuple[str | int, ...]) -> tuple[Any, _Spot]:
        key = id(node)
        if key in self._active:
            self.problem("an alias refers to a node that contains it", node, path)
            return None, _Spot(*_node_start(node))
        if key in self._built:
            self._expanded += 1
            if self._expanded > self._max_nodes:
                line, column = _node_start(node)
                where = Location(file=self.file, line=line, column=column, path=format_path(path))
                raise InputError([limits.exceeded("aliases expand to too many nodes", self._expanded,
                                                  self._max_nodes, "yaml_nodes", where)])
        if len(path) > self._max_depth:
            line, column = _node_start(node)
            where = Location(file=self.file, line=line, column=column)
            raise InputError([limits.exceeded("the YAML nests too deeply: levels", len(path), self._max_depth,
                                              "yaml_depth", where)])
        self._built.add(key)
        self._active.add(key)
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return self._sequence(node, path)
            return self._scalar(node, path), _Spot(*_node_start(node))
        finally:
            self._active.discard(key)

    def _sequence(self, node: SequenceNode, path: tuple[str | int, ...]) -> tuple[Any, _Spot]:
        data: list[Any] = []
        spots: list[_Spot] = []
        for index, item in enumerate(node.value):
            value, spot = self.build(item, (*path, index))
            data.append(value)
            spots.append(spot)
        return data, _Spot(*_node_start(node), items=spots)

    def _mapping(self, node: MappingNode, path: tuple[str | int, ...]) -> tuple[Any, _Spot]:
        data: dict[str, Any] = {}
        spots: dict[str, _Spot] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _PLAIN_TAG and key_node.value == "<<":
                self._merge(value_node, path, data, spots)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            key_line = _node_start(key_node)[0]
            if key in first_seen:
                message = (f"duplicate key {json.dumps(key, ensure_ascii=False)}: "
                           f"first at line {first_seen[key]}, again at line {key_line}")
                if not self.keep_last_duplicate:
                    self.problem(message, key_node, (*path, key))
                    continue
                line, column = _node_start(key_node)
                self.warnings.append(Diagnostic(
                    f"{message}; the last one is used, as KubeVela's reader (sigs.k8s.io/yaml) does",
                    Location(file=self.file, line=line, column=column, path=format_path((*path, key)))))
                data.pop(key, None)  # the last one wins, in the place it is written
            first_seen[key] = key_line
            value, spot = self.build(value_node, (*path, key))
            data[key] = value
            # A scalar or flow collection is pointed at where it is written; a block collection
            # or an empty value at its key, the line that names it.
            anchor = value_node if _written_inline(value_node) else key_node
            spots[key] = _Spot(*_node_start(anchor), fields=spot.fields, items=spot.items)
        return data, _Spot(*_node_start(node), fields=spots)

    def _merge(self, node: Node, path: tuple[str | int, ...], data: dict[str, Any], spots: dict[str, _Spot]) -> None:
        sources = list(reversed(node.value)) if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.problem("a `<<` merge needs a mapping or a list of mappings", source, path)
                continue
            merged, spot = self.build(source, path)
            if not isinstance(merged, dict):
                continue  # a recursive alias, already reported
            data.update(merged)
            if spot.fields:
                spots.update(spot.fields)

    def _key(self, node: Node, path: tuple[str | int, ...]) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem("a mapping key must be a string, not a list or mapping", node, path)
            return None
        value = self._scalar(node, path)
        if isinstance(value, str):
            return value
        if value is None:
            self.problem("a mapping key must be a string, not null", node, path)
            return None
        if isinstance(value, bool):
            key = "true" if value else "false"
            if node.value.lower() != key:  # `y`, `no`, `on`...: a boolean in YAML 1.1, as go-yaml v2 reads it
                self.word_keys[(*path, key)] = node.value
            return key
        if isinstance(value, int):
            return str(value)
        return _float32_key_text(float(value))

    def _scalar(self, node: Node, path: tuple[str | int, ...]) -> Any:
        text: str = node.value
        tag = node.tag
        if tag == _PLAIN_TAG:
            kind, value = _resolve_plain(text)
            return text if kind == _TIME else value
        if tag == _BINARY_TAG:
            try:
                return base64.b64decode("".join(text.split()), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                self.problem("a !!binary value must be base64 of UTF-8 text", node, path)
                return text
        wanted = _TYPED_TAGS.get(tag)
        if wanted is None:
            return text  # !!str, and tags go-yaml does not know: the text itself
        kind, value = _resolve_plain(text, timestamps=wanted == _TIME)
        if kind == wanted:
            return text if kind == _TIME else value
        if wanted == _FLOAT and kind == _INT:
            return float(value)
        self.quoted.append((len(self.problems), path, wanted))
        self.problem(f"cannot read {json.dumps(text, ensure_ascii=False)} as !!{wanted}", node, path)
        return text


def _node_start(node: Node) -> tuple[int, int]:
    mark = node.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _written_inline(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return not (node.tag == _PLAIN_TAG and node.value == "")
    return isinstance(node, MappingNode | SequenceNode) and bool(node.flow_style)


def _is_empty_document(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _PLAIN_TAG and _resolve_plain(node.value)[0] == _NULL


_PLAIN_PATH_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_path(path: Sequence[str | int]) -> str:
    """`spec.components[1].properties.ports[0].port`; keys that are not identifiers as `["a.b"]`."""
    return "".join(format_step(step, k == 0) for k, step in enumerate(path))


def format_step(step: str | int, first: bool) -> str:
    """One step of a dotted path: `[3]`, `.name` (`name` first), or `["odd.key"]`."""
    if isinstance(step, int):
        return f"[{step}]"
    if _PLAIN_PATH_KEY.fullmatch(step):
        return step if first else f".{step}"
    return f"[{json.dumps(step, ensure_ascii=False)}]"


@dataclass(frozen=True)
class Document:
    """One YAML document of a file: its plain data and where each of its nodes was written."""

    data: Any
    file: str
    index: int
    positions: _Spot | None = field(default=None, repr=False, compare=False)
    # keys written as a YAML 1.1 boolean word other than true/false (`y`, `no`, `on`): their path
    # (ending in the key they became, "true" or "false") → the word as written
    word_keys: dict[tuple[str | int, ...], str] = field(default_factory=dict, repr=False, compare=False)

    def word_key_warnings(self) -> list[Diagnostic]:
        """One warning per key written as a YAML 1.1 boolean word: Kubernetes' reader (and KubeVela's)
        turns `y:` into the key "true", so a parameter named `y` is never given."""
        out = []
        for path, word in self.word_keys.items():
            key = path[-1]
            out.append(Diagnostic(
                f"the key {word} is read as the boolean {key}, so this field is named {json.dumps(key)}: "
                "KubeVela reads YAML as Kubernetes does (YAML 1.1: y, yes, on are true; n, no, off are false)",
                self.location(path), f'quote it ("{word}": ...) if you meant the name {word}'))
        return out

    def location(self, path: Sequence[str | int]) -> Location:
        """1-based line/column of the node at `path`, or of its nearest existing ancestor.

        A scalar or flow collection is located where its value is written; a block mapping or
        list, and an empty value, at the key that names it. `Location.path` is always `path`.
        """
        spot = self.positions
        text_path = format_path(path)
        if spot is None:
            return Location(file=self.file, path=text_path)
        for step in path:
            child: _Spot | None = None
            if isinstance(step, str):
                child = spot.fields.get(step) if spot.fields is not None else None
            elif spot.items is not None and 0 <= step < len(spot.items):
                child = spot.items[step]
            if child is None:
                break
            spot = child
        return Location(file=self.file, line=spot.line, column=spot.column, path=text_path)


def load_documents(text: str, file: str, duplicate_warnings: list[Diagnostic] | None = None) -> list[Document]:
    """Every non-empty document in `text`; `file` is the name errors will show.

    Raises InputError for a syntax error (first one, located) or, gathered over the whole file,
    duplicate keys, null or collection keys and values that do not match their explicit tag.
    With `duplicate_warnings` (definition files), a duplicated key keeps its last value, as
    sigs.k8s.io/yaml does, and a warning naming both lines is added to that list instead.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    builder = _Builder(file, keep_last_duplicate=duplicate_warnings is not None)
    documents: list[Document] = []
    try:
        for index, node in enumerate(_compose(text, file)):
            if _is_empty_document(node):
                continue
            data, spot = builder.build(node, ())
            builder.withhold_secrets(data)
            documents.append(Document(data, file, index, spot, builder.word_keys))
            builder.word_keys = {}
    except RecursionError:
        line, column = _too_deep_at(text)
        raise InputError("the YAML nests too deeply to read", Location(file=file, line=line, column=column)) \
            from None
    if builder.problems:
        raise InputError(builder.problems)
    if duplicate_warnings is not None:
        duplicate_warnings.extend(builder.warnings)
    return documents


def _too_deep_at(text: str) -> tuple[int, int]:
    """Where nesting first goes past the depth limit (by the parser's event stream, which does not
    recurse), or (0, 0) when the parser itself fails first."""
    limit = limits.current().yaml_depth
    depth = 0
    loader: Any = yaml.BaseLoader(text)  # the pure parser: libyaml scans a whole flow collection first
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > limit and event.start_mark is not None:
                    return event.start_mark.line + 1, event.start_mark.column + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    finally:
        loader.dispose()
    return 0, 0


def _decode(raw: bytes, file: str) -> str:
    encoding = "utf-16" if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        line_start = raw.rfind(b"\n", 0, error.start) + 1
        line = raw.count(b"\n", 0, error.start) + 1
        column = len(raw[line_start : error.start].decode("utf-8", "replace")) + 1
        where = Location(file=file, line=line, column=column)
        raise InputError(f"the file is not {encoding.removesuffix('-sig').upper()} text", where) from None


def load_file(path: str | os.PathLike[str], duplicate_warnings: list[Diagnostic] | None = None) -> list[Document]:
    """Read `path` and load its documents (see `load_documents`); unreadable files are InputErrors."""
    name = os.fspath(path)
    max_bytes = limits.current().file_bytes
    try:
        size = os.stat(name).st_size
        if size > max_bytes:
            raise InputError([limits.exceeded("the file is too large to read: bytes", size, max_bytes, "file_bytes",
                                              Location(file=name))])
        with open(name, "rb") as fh:
            raw = fh.read(max_bytes + 1)
        if len(raw) > max_bytes:  # a file that grows, or a pipe
            raise InputError([limits.exceeded("the file is too large to read: bytes", len(raw), max_bytes,
                                              "file_bytes", Location(file=name))])
    except OSError as error:
        raise InputError(f"cannot read the file: {error.strerror or error}", Location(file=name)) from None
    return load_documents(_decode(raw, name), name, duplicate_warnings)
