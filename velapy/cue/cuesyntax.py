"""CUE source text → tokens, top-level field spans, and literal data with comment tags.

This is not a CUE evaluator (velapy never re-implements CUE; the engine module runs a real one).
It reads CUE *syntax* in the two places velapy must look at text without evaluating it:

- a definition file, split into its imports, its one metadata field and its `template` body, so
  that definitions load without evaluation and a template is compiled only when it is used;
- concrete data as `cue export --out cue` prints it (and literal metadata blocks), with the
  `// +patchKey=...` style comment tags that KubeVela's trait patches depend on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


class CueSyntaxError(Exception):
    """Text that does not lex or parse; `line`/`column` are 1-based in the text given."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Token:
    kind: str  # comment, ident, string, number, punct, newline, eof
    text: str
    start: int  # offset in the source
    line: int
    column: int


_TOKEN_RE = re.compile(
    r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<comment>//[^\n]*)
  | (?P<string>\#*(?:\"\"\"|'''|\"|'))
  | (?P<number>(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|
        (?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9_]+)?(?:[KMGTP]i?)?))
  | (?P<ident>[#_$]*(?:[^\W\d]|\$)[\w$]*|_)  # CUE letters are Unicode letters
  | (?P<punct>\.\.\.|==|!=|<=|>=|=~|!~|&&|\|\||[{}\[\]():,?!=<>+\-*/&|.@])
    """,
    re.VERBOSE,
)


def tokenize(src: str) -> list[Token]:
    """All tokens of `src` except blanks; comments and newlines are kept."""
    out: list[Token] = []
    pos, line, line_start, n = 0, 1, 0, len(src)
    while pos < n:
        m = _TOKEN_RE.match(src, pos)
        if m is None:
            raise CueSyntaxError(f"unexpected character {src[pos]!r}", line, pos - line_start + 1)
        kind = m.lastgroup or ""
        col = pos - line_start + 1
        if kind == "string":
            end = _string_end(src, pos, m.group("string"), line, col)
            text = src[pos:end]
            out.append(Token("string", text, pos, line, col))
            nl = text.count("\n")
            if nl:
                line += nl
                line_start = pos + text.rfind("\n") + 1
            pos = end
            continue
        text = m.group(0)
        if kind == "newline":
            out.append(Token("newline", text, pos, line, col))
            line += 1
            line_start = pos + 1
        elif kind != "space":
            out.append(Token(kind, text, pos, line, col))
        pos = m.end()
    out.append(Token("eof", "", n, line, pos - line_start + 1))
    return out


def _string_end(src: str, pos: int, opener: str, line: int, col: int) -> int:
    hashes = len(opener) - len(opener.lstrip("#"))
    quote = opener[hashes:]
    closer = quote + "#" * hashes
    escape = "\\" + "#" * hashes
    i = pos + len(opener)
    n = len(src)
    while i < n:
        if src.startswith(escape, i):
            i += len(escape) + 1
            continue
        if src.startswith(closer, i):
            return i + len(closer)
        if len(quote) == 1 and src[i] == "\n":
            break
        i += 1
    raise CueSyntaxError("string literal not terminated", line, col)


# --------------------------------------------------------------------------------------------
# Top-level structure of a file (no evaluation)


@dataclass(frozen=True)
class TopField:
    """One top-level field of a CUE file: its label and the source span of its value."""

    label: str
    label_line: int
    value_start: int  # offset of the first character of the value
    value_end: int  # offset just past the value
    value_line: int
    value_column: int


@dataclass(frozen=True)
class FileOutline:
    package: str
    imports: tuple[str, ...]  # each import spec as written, e.g. `"strings"` or `l "list"`
    fields: tuple[TopField, ...]
    other: tuple[tuple[int, int], ...]  # top-level lines (1-based) holding anything else


_OPEN = {"{": "}", "[": "]", "(": ")"}


def outline(src: str) -> FileOutline:
    """Split a CUE file into package clause, imports and top-level fields (values as spans)."""
    toks = [t for t in tokenize(src) if t.kind != "comment"]
    i = 0
    package = ""
    imports: list[str] = []
    fields: list[TopField] = []
    other: list[tuple[int, int]] = []

    def skip_newlines(k: int) -> int:
        while toks[k].kind == "newline" or (toks[k].kind == "punct" and toks[k].text == ","):
            k += 1
        return k

    i = skip_newlines(i)
    if toks[i].kind == "ident" and toks[i].text == "package":
        package = toks[i + 1].text
        i = skip_newlines(i + 2)
    while toks[i].kind == "ident" and toks[i].text == "import":
        i += 1
        if toks[i].text == "(":
            i += 1
            spec: list[str] = []
            while toks[i].text != ")":
                if toks[i].kind == "eof":
                    raise CueSyntaxError("import block not closed", toks[i].line, toks[i].column)
                if toks[i].kind == "newline" or toks[i].text == ",":
                    if spec:
                        imports.append(" ".join(spec))
                        spec = []
                else:
                    spec.append(toks[i].text)
                i += 1
            if spec:
                imports.append(" ".join(spec))
            i += 1
        else:
            spec = []
            while toks[i].kind not in ("newline", "eof"):
                spec.append(toks[i].text)
                i += 1
            imports.append(" ".join(spec))
        i = skip_newlines(i)
    while toks[i].kind != "eof":
        start_tok = toks[i]
        # label chain `a: b: c:` is taken as the first label; the value is the rest of the chain
        if start_tok.kind in ("ident", "string") and toks[i + 1].text in (":", "?", "!"):
            j = i + 1
            if toks[j].text in ("?", "!"):
                j += 1
            if toks[j].text != ":":
                raise CueSyntaxError("expected ':'", toks[j].line, toks[j].column)
            j += 1
            label = start_tok.text if start_tok.kind == "ident" else _unquote(start_tok)
            end = _value_end(toks, j)
            vstart = toks[j]
            fields.append(
                TopField(label, start_tok.line, vstart.start, toks[end - 1].start + len(toks[end - 1].text),
                         vstart.line, vstart.column)
            )
            i = skip_newlines(end)
        else:
            end = _value_end(toks, i)
            other.append((start_tok.line, toks[end - 1].line))
            i = skip_newlines(end)
    return FileOutline(package, tuple(imports), tuple(fields), tuple(other))


def _value_end(toks: list[Token], i: int) -> int:
    """Index just past the expression starting at toks[i] (ends at a top-level newline or comma)."""
    depth: list[str] = []
    while True:
        t = toks[i]
        if t.kind == "eof":
            if depth:
                raise CueSyntaxError(f"missing {depth[-1]!r}", t.line, t.column)
            return i
        if t.kind == "punct":
            if t.text in _OPEN:
                depth.append(_OPEN[t.text])
            elif t.text in ("}", "]", ")"):
                if not depth or depth[-1] != t.text:
                    raise CueSyntaxError(f"unexpected {t.text!r}", t.line, t.column)
                depth.pop()
            elif t.text == "," and not depth:
                return i
        elif t.kind == "newline" and not depth:
            # a binary operator at line end continues the expression
            prev = toks[i - 1]
            if prev.kind == "punct" and prev.text in ("&", "|", "+", "-", "*", "/", "&&", "||", ":", "=", "==", "!="):
                i += 1
                continue
            return i
        i += 1


# --------------------------------------------------------------------------------------------
# Literal data with comment tags


_TAG_RE = re.compile(r"^//\s*\+([A-Za-z][\w-]*)=(\S+)")


class _DataParser:
    """Recursive-descent reader of literal CUE data (what `cue export --out cue` prints)."""

    def __init__(self, src: str, origin_line: int = 1) -> None:
        self.toks = tokenize(src)
        self.i = 0
        self.tags: dict[Path, dict[str, str]] = {}
        self.origin_line = origin_line

    def error(self, msg: str, tok: Token | None = None) -> CueSyntaxError:
        t = tok or self.toks[self.i]
        return CueSyntaxError(msg, t.line + self.origin_line - 1, t.column)

    def peek(self) -> Token:
        return self.toks[self.i]

    def next(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def skip_space(self) -> list[str]:
        """Skip newlines and commas; return the comment lines directly above the next token."""
        comments: list[str] = []
        while True:
            t = self.peek()
            if t.kind == "newline":
                # a blank line detaches earlier comments
                if self.i > 0 and self.toks[self.i - 1].kind == "newline":
                    comments = []
                self.i += 1
            elif t.kind == "comment":
                comments.append(t.text)
                self.i += 1
            elif t.kind == "punct" and t.text == ",":
                self.i += 1
            else:
                return comments

    def parse_file(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.fields(out, (), closer="")
        return out

    def fields(self, out: dict[str, Any], path: Path, closer: str) -> None:
        while True:
            comments = self.skip_space()
            t = self.peek()
            if closer and t.kind == "punct" and t.text == closer:
                self.i += 1
                return
            if t.kind == "eof":
                if closer:
                    raise self.error(f"missing {closer!r}")
                return
            if t.kind == "punct" and t.text == "...":
                self.i += 1
                continue
            self.field(out, path, comments)

    def label(self) -> tuple[str, bool]:
        t = self.next()
        if t.kind == "ident":
            name = t.text
        elif t.kind == "string":
            name = _unquote(t)
        else:
            raise self.error(f"expected a field label, found {t.text!r}", t)
        optional = False
        if self.peek().kind == "punct" and self.peek().text in ("?", "!"):
            optional = self.peek().text == "?"
            self.i += 1
        colon = self.next()
        if colon.text != ":":
            raise self.error(f"expected ':' after label {name!r}", colon)
        return name, optional

    def field(self, out: dict[str, Any], path: Path, comments: list[str]) -> None:
        name, optional = self.label()
        # shorthand chain a: b: c: v. CUE's printer only chains labels that carry no comment of
        # their own, so comments printed above a chain belong to its first label.
        chain = [name]
        while True:
            t = self.peek()
            nt = self.toks[self.i + 1]
            if t.kind in ("ident", "string") and nt.kind == "punct" and nt.text in (":", "?", "!") \
                    and not (t.kind == "ident" and t.text in ("true", "false", "null")):
                sub, _opt = self.label()
                chain.append(sub)
            else:
                break
        target = out
        for k in chain[:-1]:
            existing = target.get(k)
            if not isinstance(existing, dict):
                existing = {}
                target[k] = existing
            target = existing
        full: Path = path + tuple(chain)
        value = self.value(full)
        if optional:
            return
        tags = tags_of(comments)
        if tags:
            self.tags.setdefault((*path, name), {}).update(tags)
        last = chain[-1]
        if last in target and isinstance(target[last], dict) and isinstance(value, dict):
            _merge(target[last], value)
        else:
            target[last] = value

    def value(self, path: Path) -> Any:
        t = self.next()
        if t.kind == "punct" and t.text == "{":
            out: dict[str, Any] = {}
            self.fields(out, path, closer="}")
            return out
        if t.kind == "punct" and t.text == "[":
            items: list[Any] = []
            while True:
                self.skip_space()
                p = self.peek()
                if p.kind == "punct" and p.text == "]":
                    self.i += 1
                    return items
                if p.kind == "punct" and p.text == "...":
                    self.i += 1
                    continue
                items.append(self.value((*path, len(items))))
        if t.kind == "string":
            if t.text.lstrip("#").startswith("'"):
                raise self.error("byte strings are not supported in data", t)
            return _unquote(t)
        if t.kind == "number":
            return _number(t.text)
        if t.kind == "punct" and t.text == "-" and self.peek().kind == "number":
            return -_number(self.next().text)
        if t.kind == "ident" and t.text in ("true", "false"):
            return t.text == "true"
        if t.kind == "ident" and t.text == "null":
            return None
        raise self.error(f"expected a literal value, found {t.text!r}", t)


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if k in dst and isinstance(dst[k], dict) and isinstance(v, dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def tags_of(comments: list[str]) -> dict[str, str]:
    """`// +key=value` comment lines → {key: value}."""
    out: dict[str, str] = {}
    for c in comments:
        m = _TAG_RE.match(c.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def _number(text: str) -> int | float:
    t = text.replace("_", "")
    mult = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "K", "M", "G", "T", "P"):
        if t.endswith(suffix):
            v = float(t[: -len(suffix)]) * mult[suffix]
            return int(v) if v == int(v) else v
    low = t.lower()
    if low.startswith("0x"):
        return int(t[2:], 16)
    if low.startswith("0o"):
        return int(t[2:], 8)
    if low.startswith("0b"):
        return int(t[2:], 2)
    if any(c in t for c in ".eE"):
        return float(t)
    return int(t)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "/": "/", '"': '"', "'": "'"}


def _unquote(tok: Token) -> str:
    """The value of a CUE string literal token (simple and multi-line forms)."""
    text = tok.text
    hashes = len(text) - len(text.lstrip("#"))
    body = text[hashes: len(text) - hashes]
    if body.startswith('"""') or body.startswith("'''"):
        inner = body[3:-3]
        if not inner.startswith("\n"):
            raise CueSyntaxError("multi-line string must start with a newline", tok.line, tok.column)
        last_nl = inner.rfind("\n")
        indent = inner[last_nl + 1:]
        lines = inner[1:last_nl].split("\n")
        stripped = []
        for ln in lines:
            if ln.startswith(indent):
                stripped.append(ln[len(indent):])
            elif ln.strip() == "":
                stripped.append("")
            else:
                raise CueSyntaxError("inconsistent indentation in multi-line string", tok.line, tok.column)
        raw = "\n".join(stripped)
    else:
        raw = body[1:-1]
    return _unescape(raw, hashes, tok)


def _unescape(raw: str, hashes: int, tok: Token) -> str:
    esc = "\\" + "#" * hashes
    if esc not in raw:
        return raw
    out: list[str] = []
    i = 0
    n = len(raw)
    while i < n:
        if raw.startswith(esc, i):
            j = i + len(esc)
            c = raw[j] if j < n else ""
            if c in _ESCAPES:
                out.append(_ESCAPES[c])
                i = j + 1
            elif c == "u":
                out.append(chr(int(raw[j + 1:j + 5], 16)))
                i = j + 5
            elif c == "U":
                out.append(chr(int(raw[j + 1:j + 9], 16)))
                i = j + 9
            elif c == "x":
                out.append(chr(int(raw[j + 1:j + 3], 16)))
                i = j + 3
            elif c == "(":
                raise CueSyntaxError("string interpolation is not literal data", tok.line, tok.column)
            elif c == "\n":
                i = j + 1
            else:
                raise CueSyntaxError(f"unknown escape sequence \\{c}", tok.line, tok.column)
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def parse_data(src: str, origin_line: int = 1) -> tuple[dict[str, Any], dict[Path, dict[str, str]]]:
    """Literal CUE data (struct body) → (plain data, comment tags by field path).

    Tags are `// +key=value` comment lines directly above a field. In CUE's printed output a
    comment above a chain `a: b: c: v` belongs to `a`: the printer breaks a chain at any label
    that has comments (a source comment above `a: b: c:` was already attached to `c` by CUE).
    Optional fields (`x?:`) are left out. `origin_line` shifts reported line numbers.
    """
    p = _DataParser(src, origin_line)
    data = p.parse_file()
    return data, p.tags


def parse_value(src: str, origin_line: int = 1) -> Any:
    """One literal CUE value (e.g. a metadata struct `{type: "trait", ...}`) → plain data."""
    p = _DataParser(src, origin_line)
    p.skip_space()
    v = p.value(())
    p.skip_space()
    if p.peek().kind != "eof":
        raise p.error(f"unexpected {p.peek().text!r} after value")
    return v
