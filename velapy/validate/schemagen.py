"""Definitions → JSON Schemas (draft 2020-12) of their `parameter`, computed by the CUE engine.

velapy does not read a template's `parameter` itself: the engine does. One generated file holds
every definition's template as a hidden field `_t<n>` (with `context: _` so templates compile
without a context), and one schema request per definition:

    #p3: close({v: [_t3.parameter][0]})

`cue def --out openapi` then runs CUE's own OpenAPI encoder over the file, once for all
definitions. (`[x][0]` makes the encoder expand the value instead of emitting a `$ref` to a path
that is not a schema; `close` lets a non-struct value through the encoder's top-level rule.)
Only the parameter and the template fields it refers to are evaluated: the other top-level
fields (`output`, `outputs`, `patch`, ...) are blanked to `_` in place (line numbers kept), and
lets and imports nobody uses any more are dropped, because those parts may only evaluate with real
values (or only on a newer CUE); `compile_check=True` (`velapy def vet`) evaluates everything.

Five things the encoder of CUE v0.4 cannot do are worked around here, with the engine still
doing every evaluation:

- a list of required elements (`[string, ...string]`, `[string, string]`) is taken for a default and
  fails (`incomplete value string`); `list.MinItems` does not work on an open list in v0.4 either.
  Such lists are asked for as open lists of the same elements (`[...string]`), and the counts the
  text gives become `minItems` / `maxItems`. Any other encoder failure at a path of its output
  leaves the definition with an open schema and a note, like the cases below;

- a parameter that is a disjunction of structs (`*#Edit | close({containers: [...#Edit]})`): the
  top-level alternatives are split on the source text and requested one by one (`#p3a0`,
  `#p3a1`); the schema is their `anyOf`. A template path the parameter refers to that is one
  (`#Match: {prefix: string} | {exact: string}`: "unsupported op | for object type") is split the
  same way after the encoder refuses it, each alternative a path of its own (`_split_ref`);
- a conditional whose discriminator has no default (`mode: "a" | "b"`, `if mode == "b" {...}`:
  "unresolved disjunction") is asked for again without its `if` clauses;
- references to the template's own definitions and hidden fields (`livenessProbe?: #Probe`) come
  out as `$ref`s to template paths: those paths are requested too (`#r3_0`), found beforehand by
  following the identifiers of the parameter's text, and any still missing in a second call;
- whether a struct is open cannot be seen in OpenAPI, so the source text is scanned for structs
  holding `...` or a comprehension (`if type == "pvc" {...}`, whose fields depend on values);
  those stay open, every other struct with declared fields is closed (`additionalProperties:
  false`), which is how velapy reports unknown parameters.

The OpenAPI 3.0 answer is then turned into JSON Schema 2020-12: `$ref`s into `$defs`, `nullable`
into a `null` type, `oneOf` into `anyOf` (a CUE disjunction accepts a value matching several
alternatives), fields with a default dropped from `required` (CUE fills them in), `+usage=`
comments as descriptions. A definition whose parameter the encoder cannot express at all (a
nested struct disjunction) or that fails to evaluate gets an open schema and a note in
`x-velapy-notes` (CUE still checks it at render time, with the real values); a template that does
not parse is reported as a definition bug at its `.cue` file:line:col. After a parse error, the
file is sent again without that template, so one broken definition costs one more call.

The built-ins' schemas are checked in under `schemas/definitions/<kind>/<name>.schema.json`
(`velapy def schema` writes them); each records a digest of its definition, so a stale file is
never used and a test fails when the two drift apart.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velapy.cue.cuesyntax import CueSyntaxError, Token, outline, parse_value, tokenize
from velapy.cue.engine import Evaluator, compat_v04, error_blocks
from velapy.errors import Diagnostic, EngineError, Location
from velapy.load import hcl
from velapy.load.definitions import Definition
from velapy.resources import schemas_dir

DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ROOT = schemas_dir()
DEFINITION_SCHEMA_DIR = SCHEMA_ROOT / "definitions"
# folder names under schemas/definitions/, the same as under definitions/
KIND_DIRS = {"component": "component", "trait": "trait", "policy": "policy", "workflow-step": "workflowstep",
             "workload": "workload"}

_MAX_ROUNDS = 12
_REF_PREFIX = "#/components/schemas/"
_ENTRY_HEAD = re.compile(r"^(?:components\.schemas\.)?#?(?P<key>[pr]\d+(?:a\d+|_\d+)?)(?:[.:\s]|$)")
_TEMPLATE_HEAD = re.compile(r"^_t(?P<n>\d+)(?:[.:\s]|$)")
_PATH_HEAD = re.compile(r"^_t\d+\.\S*:")  # `_t3.output.x: ...`: an evaluation error at a path
_TAG_LINE = re.compile(r"^\+([A-Za-z][\w-]*)(?:=(.*))?$")

Key = tuple[str, str]  # (kind, name)


def key_of(d: Definition) -> Key:
    return (d.kind, d.name)


def digest(d: Definition) -> str:
    """What a schema is generated from: the template text, its imports and the description."""
    t = d.template
    payload = json.dumps([d.kind, d.name, d.description, list(t.imports) if t else [], t.body if t else ""])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def schema_file(d: Definition | Key, root: Path = DEFINITION_SCHEMA_DIR) -> Path:
    kind, name = d if isinstance(d, tuple) else key_of(d)
    return root / KIND_DIRS.get(kind, kind) / f"{name}.schema.json"


@dataclass
class Generated:
    """Schemas by definition, and the definitions whose templates do not compile."""

    schemas: dict[Key, dict[str, Any]] = field(default_factory=dict)
    problems: dict[Key, list[Diagnostic]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# the generated file


@dataclass
class _Request:
    key: str  # top-level definition of the batch: p3, p3a0, r3_1
    owner: int  # definition index
    expr: str  # CUE expression (in the scope of the file) whose schema is wanted
    refname: str = ""  # for template paths: the name the encoder uses in its `$ref`s
    line: int = 0


@dataclass
class _Plan:
    """What is asked of one definition: its parameter (or alternatives) and template paths."""

    index: int
    definition: Definition
    alternatives: list[str]  # source text of the top-level alternatives ([] = the whole parameter)
    default_alt: int  # index of the `*` alternative, or -1
    refs: list[tuple[str, str]]  # (refname, CUE path) of template paths, requested as r<index>_<j>
    fields: dict[str, str]  # top-level template label → value text (for the open-struct scan)
    param_text: str
    notes: list[str] = field(default_factory=list)
    failed_requests: set[str] = field(default_factory=set)
    want_parameter: bool = True  # False in a later round that only asks for missing paths
    pending_refs: set[int] = field(default_factory=set)  # indexes of `refs` asked this round
    has_parameter: bool = True
    source: str = ""  # the template body as evaluated (unneeded fields blanked to `_`)
    imports: tuple[str, ...] = ()
    whole: bool = False  # the whole template is evaluated (a compile check): every error counts
    loose_param: str = ""  # the parameter with element lists loosened (`_loosen_lists`), when it differs
    unconditioned: bool = False  # the parameter was asked for again without its `if` clauses
    # a template path the encoder cannot write as a whole (a disjunction of structs) → the refnames of
    # its alternatives, each asked for on its own; its schema is their `anyOf`
    ref_alternatives: dict[str, list[str]] = field(default_factory=dict)
    loose_refs: dict[int, str] = field(default_factory=dict)  # the same for requested template paths
    op_stub: str = ""  # a `vela/op` stand-in for the legacy actions (`_legacy_op`), when one is used


@dataclass
class _Segment:
    owner: int
    first: int  # first line of the template body in the batch file
    last: int


def _plan(index: int, d: Definition, whole: bool = False) -> _Plan:
    """What to ask for `d`. Unless `whole`, only the parameter and what it refers to is evaluated:
    the other top-level fields (`output`, `patch`, ...) become `_`, so that a template part that
    only evaluates with real values (or a newer CUE) does not stand in the way of its schema."""
    assert d.template is not None
    body = d.template.body
    fields: dict[str, str] = {}
    spans: list[tuple[str, int, int]] = []
    params: list[str] = []
    outlined = False
    other: tuple[tuple[int, int], ...] = ()
    try:
        shape = outline(body)
        other = shape.other
        for f in shape.fields:
            text = body[f.value_start:f.value_end]
            spans.append((f.label, f.value_start, f.value_end))
            if f.label == "parameter":
                params.append(text)
            elif f.label not in fields:
                fields[f.label] = text
        outlined = True
    except CueSyntaxError:
        pass  # the engine will say where
    param_text = params[0] if len(params) == 1 else ""
    alternatives: list[str] = []
    default_alt = -1
    if param_text:
        alts = _split_disjunction(param_text)
        if len(alts) > 1:
            for k, alt in enumerate(alts):
                if alt.startswith("*"):
                    default_alt = k
                    alt = alt[1:].lstrip()
                alternatives.append(_loosen_lists(alt))
    # template fields the parameter refers to, followed transitively through their own text;
    # definitions and hidden fields among them are asked for too (the encoder `$ref`s them)
    refs: list[tuple[str, str]] = []
    kept = {"parameter", "context"}
    todo = list(params)
    while todo:
        for name in _referenced_labels(todo.pop(), fields):
            if name in kept:
                continue
            kept.add(name)
            todo.append(fields[name])
            if name.startswith(("#", "_")):
                refs.append((f"_t{index}.{name.lstrip('#')}", f"_t{index}.{name}"))
    source = body
    if not whole and outlined:
        chars = list(body)
        for label, start, end in spans:
            if label not in kept:
                chars[start:end] = ["_"] + [c if c == "\n" else " " for c in body[start + 1:end]]
        # a top-level `let` only the blanked fields used would now be an error (unreferenced)
        line_starts = [0] + [i + 1 for i, c in enumerate(body) if c == "\n"]
        lets: dict[str, tuple[int, int]] = {}
        used = [*params, *(fields[k] for k in kept if k in fields)]
        for first, last in other:
            start = line_starts[first - 1]
            end = line_starts[last] if last < len(line_starts) else len(body)
            words = body[start:end].split()
            if len(words) > 1 and words[0] == "let":
                lets[words[1]] = (start, end)
            else:
                used.append(body[start:end])  # comprehensions and embeddings stay
        unused = dict(lets)
        grew = True
        while grew:  # lets used by what stays, and lets those use
            grew = False
            for name, (start, end) in list(unused.items()):
                if any(_referenced_labels(text, {name: ""}) for text in used):
                    used.append(body[start:end])
                    del unused[name]
                    grew = True
        for start, end in unused.values():
            chars[start:end] = [c if c == "\n" else " " for c in body[start:end]]
        source = "".join(chars)
    imports = d.template.imports if whole else tuple(i for i in d.template.imports if _uses_import(source, i))
    op_stub = ""
    if whole:
        imports, op_stub = _legacy_op(source, imports)
    loose = _loosen_lists(param_text) if param_text and not alternatives else ""
    loose_refs = {j: _loosen_lists(fields[path.split(".", 1)[1]]) for j, (_r, path) in enumerate(refs)
                  if path.split(".", 1)[1] in fields}
    return _Plan(index, d, alternatives, default_alt, refs, fields, param_text,
                 pending_refs=set(range(len(refs))), has_parameter=bool(params) or not outlined,
                 source=source, imports=imports, whole=whole, loose_param=loose if loose != param_text else "",
                 loose_refs={j: t for j, t in loose_refs.items() if t != fields[refs[j][1].split(".", 1)[1]]},
                 op_stub=op_stub)


# The actions of KubeVela's legacy workflow provider (`pkg/workflow/providers/legacy/oam`), still in
# its `vela/op` package: older step definitions load the app's components and apply them one by one.
# The engine has no `vela/op`; a compile check of a template using them gets a stand-in with their
# fields, so that `op.#Load`'s `value` is open (filled at run time), not empty: indexing it is then
# incomplete, as in KubeVela, instead of "index out of range". The v0.4 rewrite that guards iteration
# over absent optional fields (`if x != _|_ for ...`) is undone for the loaded values: v0.4 takes an
# unknown value for absent there, and the loop would be empty again (`_unguard_loaded`).
_APPLY = "cluster: *\"\" | string, env: *\"\" | string, namespace: *\"\" | string, value: {...}, patch?: {...}"
_LOAD = "app?: string, value: _"  # `_`: unknown until run time (iterating it is incomplete, not empty)
_REMAINING = "exceptions: [...string], component?: string"
LEGACY_OP_ACTIONS = {
    "ApplyComponent": f"{_APPLY}, waitHealthy: *true | bool",
    "RenderComponent": f"{_APPLY}, output?: {{...}}, outputs?: {{...}}",
    "Load": _LOAD, "LoadComponets": _LOAD, "LoadPolicies": "value?: {...}",
    "LoadComponetsInOrder": _LOAD, "LoadInOrder": _LOAD,
    "ApplyApplication": "", "ApplyApplicationInParallel": "",
    "ApplyRemaining": _REMAINING, "ApplyComponentRemaining": _REMAINING,
}


def _legacy_op(source: str, imports: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """(imports, stand-in field): for a template whose `vela/op` import is used for a legacy action,
    the import is replaced by a field of that name holding every `op.#X` the template names (the
    legacy actions with their fields, any other one open)."""
    for spec in imports:
        parts = spec.split()
        if parts[-1] != '"vela/op"':
            continue
        alias = parts[0] if len(parts) > 1 else "op"
        used = dict.fromkeys(re.findall(rf"\b{re.escape(alias)}\.#([A-Za-z_]\w*)", source))
        if not any(name in LEGACY_OP_ACTIONS for name in used):
            return imports, ""
        defs = ", ".join(f"#{n}: {{{LEGACY_OP_ACTIONS[n] + ', ' if LEGACY_OP_ACTIONS.get(n) else ''}...}}"
                         for n in used)
        return tuple(i for i in imports if i != spec), f"{alias}: {{{defs}}}"
    return imports, ""


def _unguard_loaded(body: str, stub: str) -> str:
    """`body` (rewritten by `compat_v04`) with the iteration guard removed where a loop ranges over
    the `value` of a field set from a legacy load action of the stand-in `stub`."""
    alias = stub.split(":", 1)[0]
    loaders = re.findall(rf"^\s*([A-Za-z_]\w*)\s*:\s*{re.escape(alias)}\.#Load\w*", body, re.M)
    for label in dict.fromkeys(loaders):
        body = re.sub(rf"if ({label}\.value) != _\|_ for (.+?) in \1\b", r"for \2 in \1", body)
    return body


def _without_if_clauses(text: str) -> str:
    """`text` with every `if <condition> { ... }` clause blanked (line numbers kept)."""
    try:
        toks = tokenize(text)
    except CueSyntaxError:
        return text
    chars = list(text)
    k = 0
    while k < len(toks):
        t = toks[k]
        if t.kind == "ident" and t.text == "if":
            j = k + 1
            depth = 0
            while j < len(toks) and not (depth == 0 and toks[j].kind == "punct" and toks[j].text == "{"):
                if toks[j].kind == "punct" and toks[j].text in "([":
                    depth += 1
                elif toks[j].kind == "punct" and toks[j].text in ")]":
                    depth -= 1
                j += 1
            depth = 0
            while j < len(toks):
                if toks[j].kind == "punct" and toks[j].text in "{[(":
                    depth += 1
                elif toks[j].kind == "punct" and toks[j].text in "}])":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= len(toks):
                return text
            end = toks[j].start + 1
            chars[t.start:end] = [c if c == "\n" else " " for c in text[t.start:end]]
            k = j + 1
            continue
        k += 1
    return "".join(chars)


def _loosen_lists(text: str) -> str:
    """`text` with each list of required elements (`[string, ...string]`, `[int, int]`) written as
    an open list of the same elements (`[...string]`, `[...(int)]`).

    CUE v0.4's OpenAPI encoder takes such a list for a default and fails on its elements (`incomplete
    value string`); `list.MinItems` does not evaluate on an open list in v0.4 either. The engine
    still evaluates the loosened list; the element counts are read from the original text
    (`_Facts.min_items`). Lists of literals (`["a", "b"]`, defaults) are left alone; line breaks
    are kept, so positions in errors stay right.
    """
    try:
        toks = [t for t in tokenize(text) if t.kind != "comment"]
    except CueSyntaxError:
        return text
    edits: list[tuple[int, int, str]] = []
    for i, t in enumerate(toks):
        if not (t.kind == "punct" and t.text == "[") or any(a <= t.start < b for a, b, _ in edits):
            continue
        shape = _list_shape(text, toks, i)
        if shape is None:
            continue
        elements, tail, end = shape
        if not elements or all(_literal(e) is not _NO_LITERAL for e in elements):
            continue
        kinds = list(dict.fromkeys(_loosen_lists(e) for e in [*elements, *([tail] if tail else [])]))
        inner = kinds[0] if len(kinds) == 1 else " | ".join(f"({k})" for k in kinds)
        original = text[t.start:end]
        edits.append((t.start, end, f"[...({inner})]" + "\n" * (original.count("\n") - inner.count("\n"))))
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def _list_shape(text: str, toks: list[Token], i: int) -> tuple[list[str], str, int] | None:
    """The list literal opening at toks[i]: its element texts, the `...` tail's text ("" for none,
    "_" for a bare `...`) and the offset after its `]`. None for a pattern constraint (`[string]: T`),
    an index (`x[0]`), a comprehension or a list without a closing bracket."""
    prev = toks[i - 1] if i else None
    if prev is not None and prev.kind != "newline" and prev.text not in (":", "|", "&", "(", ",", "[", "*", "{", "..."):
        return None  # an index, a slice or an operand (`[a] + [b]`): not a list standing for itself
    depth = 0
    cuts: list[int] = []
    j = i
    while j < len(toks):
        t = toks[j]
        if t.kind == "eof":
            return None
        if t.kind == "punct" and t.text in ("{", "[", "("):
            depth += 1
        elif t.kind == "punct" and t.text in ("}", "]", ")"):
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and (t.kind == "newline" or (t.kind == "punct" and t.text == ",")):
            cuts.append(j)
        j += 1
    else:
        return None
    after = toks[j + 1] if j + 1 < len(toks) else None
    if after is not None and after.kind not in ("newline", "eof") and after.text not in (",", "|", "&", ")", "]", "}"):
        return None  # `[string]: T`, `[a] + [b]`, `[a][0]`
    bounds = [i, *cuts, j]
    parts: list[str] = []
    for a, b in itertools.pairwise(bounds):
        part = text[toks[a].start + len(toks[a].text):toks[b].start].strip()
        if part:
            parts.append(part)
    if parts and parts[0].split(maxsplit=1)[0] in ("for", "if", "let"):
        return None
    tail = ""
    if parts and parts[-1].startswith("..."):
        tail = parts.pop()[3:].strip() or "_"
    if any(p.startswith("...") for p in parts):
        return None
    return parts, tail, toks[j].start + 1


def _uses_import(text: str, spec: str) -> bool:
    """Whether `text` names the package of an import spec (`"strings"`, `l "list"`)."""
    parts = spec.split()
    name = parts[0] if len(parts) > 1 else spec.strip('"').rsplit("/", 1)[-1]
    try:
        return any(t.kind == "ident" and t.text == name for t in tokenize(text))
    except CueSyntaxError:
        return True


def _split_disjunction(text: str) -> list[str]:
    """Top-level `|` alternatives of an expression's text (one item when it is not a disjunction)."""
    try:
        toks = tokenize(text)
    except CueSyntaxError:
        return [text]
    depth = 0
    cuts: list[int] = []
    for t in toks:
        if t.kind == "punct" and t.text in ("{", "[", "("):
            depth += 1
        elif t.kind == "punct" and t.text in ("}", "]", ")"):
            depth -= 1
        elif t.kind == "punct" and t.text == "|" and depth == 0:
            cuts.append(t.start)
        elif t.kind == "punct" and t.text == ":" and depth == 0:
            return [text.strip()]  # `[string]: a | b` is a struct written without braces
    if not cuts:
        return [text.strip()]
    parts: list[str] = []
    start = 0
    for c in cuts:
        parts.append(text[start:c].strip())
        start = c + 1
    parts.append(text[start:].strip())
    return parts


def _referenced_labels(text: str, fields: dict[str, str]) -> list[str]:
    """Top-level template labels that `text` refers to (not where it uses them as labels)."""
    try:
        toks = [t for t in tokenize(text) if t.kind not in ("comment", "newline")]
    except CueSyntaxError:
        return []
    out: list[str] = []
    for t in toks:
        if t.kind == "string" and "(" in t.text:
            for inner in _interpolations(t.text):  # "\(name)" refers to name too
                out.extend(n for n in _referenced_labels(inner, fields) if n not in out)
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text == "_" or t.text not in fields or t.text in out:
            continue
        if i > 0 and toks[i - 1].kind == "punct" and toks[i - 1].text == ".":
            continue  # a selector (x.y), not a reference to a template label
        nxt = toks[i + 1] if i + 1 < len(toks) else t
        if nxt.kind == "punct" and nxt.text in (":", "?", "!"):
            continue  # a field of the same name being declared
        out.append(t.text)
    return out


def _interpolations(literal: str) -> list[str]:
    """The expressions inside `\\(...)` (or `\\#(...)` in `#"..."#`) of a string literal's text."""
    out: list[str] = []
    for m in re.finditer(r"\\#*\(", literal):
        depth, i = 1, m.end()
        while i < len(literal) and depth:
            depth += {"(": 1, ")": -1}.get(literal[i], 0)
            i += 1
        out.append(literal[m.end():i - 1])
    return out


def _batch(plans: Sequence[_Plan], fix_v04: bool = False
           ) -> tuple[str, list[_Request], list[_Segment], dict[int, list[int]]]:
    """The generated file; its requests; template line ranges; import line → definitions using it."""
    imports: list[str] = []
    users: dict[str, list[int]] = {}
    for p in plans:
        for spec in p.imports:
            if spec not in imports:
                imports.append(spec)
            users.setdefault(spec, []).append(p.index)
    lines: list[str] = []
    import_lines: dict[int, list[int]] = {}
    if imports:
        lines.append("import (")
        for spec in imports:
            lines.append(f"\t{spec}")
            import_lines[len(lines)] = users[spec]
        lines.append(")")
    requests: list[_Request] = []
    segments: list[_Segment] = []
    for p in plans:
        t = p.definition.template
        assert t is not None
        n = p.index
        lines.append(f"_t{n}: {{")
        if not t.declares_context:
            lines.append("context: _")
        first = len(lines) + 1
        # the embedded v0.4 engine gets the same source rewrites as when rendering (velapy.cue.engine)
        body = (compat_v04(p.source) if fix_v04 else p.source).split("\n")
        if fix_v04 and p.op_stub:
            body = _unguard_loaded("\n".join(body), p.op_stub).split("\n")
        body[0] = " " * (t.column - 1) + body[0]  # keep columns as in the .cue file
        lines.extend(body)
        segments.append(_Segment(n, first, len(lines)))
        for k, alt in enumerate(p.alternatives):
            lines.extend(f"_velapy_alt{k}: {alt}".split("\n"))  # one list item per line: numbers stay right
        if p.loose_param:
            lines.extend(f"_velapy_param: {p.loose_param}".split("\n"))
        for j, text in sorted(p.loose_refs.items()):
            lines.extend(f"_velapy_ref{j}: {text}".split("\n"))
        if p.op_stub:
            lines.append(p.op_stub)
        lines.append("}")
        wanted: list[_Request] = []
        if not p.has_parameter:
            pass  # nothing to ask: the template takes no parameters
        elif p.want_parameter and p.alternatives:
            wanted.extend(_Request(f"p{n}a{k}", n, f"_t{n}._velapy_alt{k}") for k in range(len(p.alternatives)))
        elif p.want_parameter:
            wanted.append(_Request(f"p{n}", n, f"_t{n}._velapy_param" if p.loose_param else f"_t{n}.parameter"))
        wanted.extend(_Request(f"r{n}_{j}", n, f"_t{n}._velapy_ref{j}" if j in p.loose_refs else path, refname)
                      for j, (refname, path) in enumerate(p.refs) if j in p.pending_refs)
        requests.extend(r for r in wanted if r.key not in p.failed_requests)
    for r in requests:
        lines.append(f"#{r.key}: close({{v: [{r.expr}][0]}})")
        r.line = len(lines)
    return "\n".join(lines) + "\n", requests, segments, import_lines


# --------------------------------------------------------------------------------------------
# running the encoder


def generate(definitions: Sequence[Definition], evaluator: Evaluator, compile_check: bool = False) -> Generated:
    """Parameter schemas of `definitions` (those with a template), in as few engine calls as possible.

    Problems are templates that do not parse. With `compile_check`, the whole template is
    evaluated and any error it has is a problem (`velapy def vet`); otherwise an error while
    evaluating the parameter leaves that definition with an open schema and a note.
    """
    out = Generated()
    for d in definitions:
        if d.terraform is not None:
            try:
                out.schemas[key_of(d)] = terraform_schema(d)
            except hcl.HclError as exc:
                out.problems[key_of(d)] = [Diagnostic(
                    f"definition {d.name}: schematic.terraform.configuration: {exc.message}",
                    Location(file=d.file, line=d.line),
                    f"line {exc.line} of the HCL configuration")]
    plans = [_plan(i, d, compile_check) for i, d in enumerate(definitions)
             if d.template is not None and d.terraform is None]
    active = {p.index: p for p in plans}
    answers: dict[str, Any] = {}
    for _round in range(_MAX_ROUNDS):
        if not active:
            break
        todo = [active[i] for i in sorted(active)]
        source, requests, segments, import_lines = _batch(todo, evaluator.runner.needs_v04_rewrites)
        ok, payload = _run(evaluator, source)
        if not ok:
            if not _handle_errors(str(payload["stderr"]), str(payload["path"]), requests, segments, import_lines,
                                  active, out):
                raise EngineError("the CUE engine could not produce schemas: " + str(payload["stderr"])[:2000])
            continue
        schemas = payload.get("components", {}).get("schemas", {})
        answers.update(schemas)
        active = {}
        # `$ref`s to template paths that were not foreseen: asked for in one more call
        for p in todo:
            known = {name for name, _ in p.refs}
            missing = [r for r in _refs_in(schemas[k] for k in schemas if _owner_of_key(k) == p.index)
                       if r.startswith(f"_t{p.index}.") and r not in known and r not in answers]
            if missing:
                first = len(p.refs)
                p.refs.extend((r, _cue_path(r, p)) for r in dict.fromkeys(missing))
                p.want_parameter = False
                p.pending_refs = set(range(first, len(p.refs)))
                active[p.index] = p
    for p in plans:
        k = key_of(p.definition)
        if k in out.problems or k in out.schemas:
            continue
        out.schemas[k] = _assemble(p, answers)
    return out


TERRAFORM_TYPES = ("hcl", "json", "remote")
_CONNECTION_SECRET = {
    "type": "object",
    "description": "The Secret the cloud resource's connection details are written to "
                   "(its namespace defaults to the application's)",
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}},
    "required": ["name"],
}


def terraform_schema(d: Definition) -> dict[str, Any]:
    """The parameters of a Terraform component: the `variable` blocks of its HCL, as KubeVela lists
    them (`vela def show`), plus `writeConnectionSecretToRef`. Open: KubeVela passes every property
    on (`spec.variable`) without checking it, and so does velapy. A remote module is not read
    offline: its schema is open, with a note. HclError when the HCL does not scan."""
    tf = d.terraform or {}
    out: dict[str, Any] = {"$schema": DIALECT, "title": f"{d.name} ({d.kind}) parameter"}
    if d.description:
        out["description"] = d.description
    notes = ["a Terraform component: KubeVela renders it into a terraform-controller Configuration whose "
             "spec.variable holds the properties, unchecked; Terraform checks them when it runs"]
    kind = tf.get("type") or "hcl"
    config = tf.get("configuration")
    root: dict[str, Any] = {"type": "object"}
    if kind == "hcl" and isinstance(config, str):
        props: dict[str, Any] = {}
        required: list[str] = []
        for v in hcl.variables(config):
            node = hcl.json_type(v.type, v.default)
            if v.description:
                node["description"] = v.description
            if not v.required:
                node["default"] = v.default
            else:
                required.append(v.name)
            props[v.name] = node
        props.setdefault("writeConnectionSecretToRef", _CONNECTION_SECRET)
        root["properties"] = props
        if required:
            root["required"] = required
    elif kind == "remote":
        notes.append(f"the variables of a remote Terraform module ({config}) are not read offline: "
                     "no parameter schema is available")
    else:
        notes.append(f"a Terraform configuration of type {kind!r}: its variables are not read")
    out.update(root)
    out["x-velapy-definition"] = {"kind": d.kind, "name": d.name, "digest": digest(d)}
    out["x-velapy-notes"] = notes
    return out


def _run(evaluator: Evaluator, source: str) -> tuple[bool, dict[str, Any]]:
    fd, path = tempfile.mkstemp(prefix="velapy-schema-", suffix=".cue")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(source)
        evaluator.calls += 1
        reply = evaluator.runner.run(["def", path, "--out", "openapi"])
    finally:
        os.unlink(path)
    if reply.code == 0:
        try:
            return True, json.loads(reply.stdout)
        except json.JSONDecodeError:
            raise EngineError(f"the CUE engine's OpenAPI output is not JSON: {reply.stdout[:500]}") from None
    return False, {"stderr": reply.stderr or reply.stdout, "path": path}


def _handle_errors(stderr: str, batch_path: str, requests: list[_Request], segments: list[_Segment],
                   import_lines: dict[int, list[int]], active: dict[int, _Plan], out: Generated) -> bool:
    """Drop what failed from the next round; True when something was dropped."""
    by_key = {r.key: r for r in requests}
    by_line = {r.line: r for r in requests}
    progressed = False
    definitions = {i: (p.definition, p.whole) for i, p in active.items()}
    dropped: set[int] = set()
    imported: set[int] = set()
    blocks = error_blocks(stderr)
    syntax = [b for b in blocks if not _TEMPLATE_HEAD.match(b[0]) and not _ENTRY_HEAD.match(b[0])]
    if syntax:
        # a parse error: only the first is sure, the scanner may stumble over what follows
        blocks = syntax[:1]
    for head, positions in blocks:
        local = [(ln, col) for f, ln, col in positions if f == os.path.normpath(batch_path)]
        message = head.replace(batch_path, "<generated>")
        m = _ENTRY_HEAD.match(head)
        req = by_key.get(m.group("key")) if m else None
        if req is None:
            req = next((by_line[ln] for ln, _ in local if ln in by_line), None)
        if req is not None and req.owner in active:
            plan = active[req.owner]
            if req.key == f"p{plan.index}" and "unresolved disjunction" in message and not plan.unconditioned:
                # `if mode == "b" {y: string}` with `mode: "a" | "b"` (no default): the encoder cannot
                # pick a branch. Ask again without the `if` clauses: the fields outside them get their
                # schema, the struct stays open (it holds a comprehension), CUE checks the rest at render
                plan.unconditioned = True
                stripped = _without_if_clauses(plan.loose_param or plan.param_text)
                if stripped != (plan.loose_param or plan.param_text):
                    plan.loose_param = stripped
                    plan.notes.append("parameter: the fields of `if` clauses whose condition has no default value "
                                      "are not in the schema (CUE checks them when rendering)")
                    progressed = True
                    continue
            if req.key not in plan.failed_requests and _split_ref(plan, req, message):
                plan.failed_requests.add(req.key)
                progressed = True
                continue
            if req.key not in plan.failed_requests:
                plan.failed_requests.add(req.key)
                plan.notes.append(_encoder_note(req, message))
                progressed = True
            continue
        for owner in _owners(head, local, segments, import_lines):
            if owner in active:
                plan = active.pop(owner)
                dropped.add(owner)
                progressed = True
                if any(ln in import_lines for ln, _ in local):
                    # a package the engine cannot provide (vela/op, ...): no schema, not a bug here
                    plan.notes.append(f"not evaluated offline: {_strip_prefix(message)}")
                    out.schemas[key_of(plan.definition)] = _open_schema(plan)
                    imported.add(owner)
                    continue
            if owner in dropped and owner not in imported and not definitions[owner][1] \
                    and _TEMPLATE_HEAD.match(head) and _PATH_HEAD.match(head):
                # an evaluation error of the parameter part (not a syntax error): CUE at render
                # time knows better, with real values; no schema, so no false alarm here
                if key_of(definitions[owner][0]) not in out.schemas:
                    lost = _Plan(owner, definitions[owner][0], [], -1, [], {}, "")
                    lost.notes.append(f"parameter not evaluated: {_strip_prefix(message)}")
                    out.schemas[key_of(definitions[owner][0])] = _open_schema(lost)
                continue
            if owner in dropped and owner not in imported:
                # every block of a failing definition: a disjunction's summary line has no
                # position, the lines after it say where each alternative failed
                d = definitions[owner][0]
                out.problems.setdefault(key_of(d), []).append(_definition_problem(d, message, local, segments, owner))
    for k, diags in out.problems.items():
        # one message per place (the alternatives of a failed disjunction fail at the same spot)
        located = [x for x in diags if x.location.column] or diags
        out.problems[k] = list({(x.location.file, x.location.line, x.location.column): x
                                for x in reversed(located)}.values())[::-1]
    return progressed


def _split_ref(plan: _Plan, req: _Request, message: str) -> bool:
    """A template path that is a disjunction of structs (`#Match: {prefix: string} | {exact: string}`),
    which CUE v0.4's encoder refuses ("unsupported op | for object type"): ask for each alternative
    as a path of its own (`_velapy_ref<j>`), as the top-level parameter's alternatives are."""
    m = re.fullmatch(r"r\d+_(\d+)", req.key)
    if m is None or "unsupported op |" not in message or not req.refname or req.refname in plan.ref_alternatives:
        return False
    label = plan.refs[int(m.group(1))][1].split(".", 1)[1]
    alts = _split_disjunction(plan.fields.get(label, ""))
    if len(alts) < 2:
        return False
    names = []
    for k, alt in enumerate(alts):
        alt = alt[1:].lstrip() if alt.startswith("*") else alt
        j = len(plan.refs)
        name = f"{req.refname}_{k + 1}"
        plan.refs.append((name, f"_t{plan.index}._velapy_ref{j}"))
        plan.loose_refs[j] = _loosen_lists(alt)
        plan.fields[name.split(".", 1)[1]] = alt  # its text, for the open-struct scan
        plan.pending_refs.add(j)
        names.append(name)
    plan.ref_alternatives[req.refname] = names
    return True


def _owners(head: str, local: list[tuple[int, int]], segments: list[_Segment],
            import_lines: dict[int, list[int]]) -> list[int]:
    m = _TEMPLATE_HEAD.match(head)
    if m:
        return [int(m.group("n"))]
    found: list[int] = []
    for ln, _col in local:
        if ln in import_lines:
            found.extend(import_lines[ln])
            continue
        # the template whose `_t<n>: {` opens last before the line (a syntax error may be
        # reported after the body, at the first token that no longer fits)
        before = [s.owner for s in segments if s.first - 2 <= ln]
        if before:
            found.append(before[-1])
    return list(dict.fromkeys(found))


def _definition_problem(d: Definition, message: str, local: list[tuple[int, int]], segments: list[_Segment],
                        owner: int) -> Diagnostic:
    assert d.template is not None
    seg = next(s for s in segments if s.owner == owner)
    loc = Location(file=d.file, line=d.line)
    for ln, col in local:
        if seg.first <= ln <= seg.last:
            loc = Location(file=d.template.file, line=d.template.line + ln - seg.first, column=col)
            break
    return Diagnostic(f"definition {d.name} ({d.kind}): {_strip_prefix(message)}", loc,
                      "a problem in the definition's template, not in the application")


def _strip_prefix(message: str) -> str:
    """`_t3.output.spec: msg` → `output.spec: msg` (the batch's own names mean nothing to a user)."""
    return re.sub(r"_t\d+\.", "", re.sub(r"^_t\d+:\s*", "", message))


def _encoder_note(req: _Request, message: str) -> str:
    m = re.match(r"^components\.schemas\.#?[pr]\d+(?:a\d+|_\d+)?\.properties\.v\.(\S+?):\s*", message)
    if m:  # a path in the encoder's output: `...properties.v.properties.pair.default.0: msg`
        message = m.group(1).removeprefix("properties.").replace(".properties.", ".") + ": " + message[m.end():]
    text = re.sub(r"^#?[pr]\d+(?:a\d+|_\d+)?(?:\.v)?:\s*", "", message)
    text = re.sub(r"^(?:openapi:\s*|components\.schemas\.)#?[pr]\d+(?:a\d+|_\d+)?(?:\.v)?:\s*", "", text)
    text = _strip_prefix(text).replace("\n", " ")
    what = req.refname.split(".", 1)[1] if req.refname else "parameter"
    return f"{what}: CUE's OpenAPI encoder cannot express it ({text}); accepted without checking"


def _owner_of_key(key: str) -> int:
    m = re.match(r"^[pr](\d+)", key)
    return int(m.group(1)) if m else -1


def _refs_in(nodes: Iterable[Any]) -> list[str]:
    out: list[str] = []
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            ref = n.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
                out.append(ref[len(_REF_PREFIX):])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return out


def _cue_path(refname: str, plan: _Plan) -> str:
    """`_t3.parameter.Rule` → `_t3.parameter.#Rule`: a segment is a definition when the text says so."""
    assert plan.definition.template is not None
    body = plan.definition.template.body
    parts = refname.split(".")
    out = [parts[0]]
    for seg in parts[1:]:
        if not seg.startswith("_") and re.search(r"(?<![\w#])#" + re.escape(seg) + r"\b", body):
            out.append("#" + seg)
        else:
            out.append(seg)
    return ".".join(out)


# --------------------------------------------------------------------------------------------
# OpenAPI 3.0 → JSON Schema 2020-12


class _Converter:
    """Converts one definition's answers, collecting the `$defs` its `$ref`s need."""

    def __init__(self, plan: _Plan, answers: dict[str, Any]) -> None:
        self.plan = plan
        self.answers = answers
        self.by_refname = {refname: f"r{plan.index}_{j}" for j, (refname, _p) in enumerate(plan.refs)}
        self.defs: dict[str, Any] = {}
        self.names: dict[str, str] = {}  # encoder name → $defs name
        self.facts: dict[str, _Facts] = {}

    def root(self) -> dict[str, Any]:
        p = self.plan
        n = p.index
        self.facts[""] = self._facts_of(p.param_text)
        if p.alternatives:
            alts = []
            for k, alt in enumerate(p.alternatives):
                ans = self._answer(f"p{n}a{k}")
                if ans is None:
                    return {}
                self.facts[f"alt{k}"] = self._facts_of(alt)
                alts.append(self.convert(ans, f"alt{k}", ()))
            return {"anyOf": alts}
        if not p.has_parameter:
            return {"type": "object"}  # no `parameter`: KubeVela gives the template `{}`
        ans = self._answer(f"p{n}")
        return self.convert(ans, "", ()) if ans is not None else {}

    def _facts_of(self, text: str) -> _Facts:
        """Facts of an expression's text, or of the template field it names (`#Params`)."""
        name = text.strip()
        while name in self.plan.fields:
            name = self.plan.fields[name].strip()
            text = name
        return _text_facts(text)

    def _answer(self, key: str) -> Any:
        if key in self.plan.failed_requests:
            return None
        wrapper = self.answers.get(key)
        if not isinstance(wrapper, dict):
            return None
        return (wrapper.get("properties") or {}).get("v")

    def ref(self, name: str) -> dict[str, Any]:
        if name in self.names:
            return {"$ref": f"#/$defs/{self.names[name]}"}
        key = self.by_refname.get(name)
        raw: Any = None
        text = ""
        if key is not None:
            raw = self._answer(key)
            label = name.split(".", 1)[1]
            text = self.plan.fields.get(label, self.plan.fields.get("#" + label, ""))
        elif name in self.answers:
            raw = self.answers[name]
        if raw is None and name in self.plan.ref_alternatives:
            pretty = self._pretty(name)
            self.names[name] = pretty
            self.defs[pretty] = {}  # placeholder against recursion
            self.defs[pretty] = {"anyOf": [self.ref(alt) for alt in self.plan.ref_alternatives[name]]}
            return {"$ref": f"#/$defs/{pretty}"}
        if raw is None:
            return {}  # not expressible: anything goes
        pretty = self._pretty(name)
        self.names[name] = pretty
        self.facts[pretty] = _text_facts(text)
        self.defs[pretty] = {}  # placeholder against recursion
        self.defs[pretty] = self.convert(raw, pretty, ())
        return {"$ref": f"#/$defs/{pretty}"}

    def _pretty(self, name: str) -> str:
        base = re.sub(r"^(?:_t\d+|[pr]\d+(?:a\d+|_\d+)?)\.(?:v\.)?", "", name) or name
        pretty = base
        k = 2
        while pretty in self.defs:
            pretty = f"{base}{k}"
            k += 1
        return pretty

    def convert(self, node: Any, root: str, path: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(node, dict):
            return {}
        out: dict[str, Any] = {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            target = self.ref(ref[len(_REF_PREFIX):])
            if len(node) == 1 or not target:
                return target
            out["allOf"] = [target]
        desc = _description(node.get("description"))
        if desc:
            out["description"] = desc
        types: list[str] = []
        t = node.get("type")
        if isinstance(t, str):
            types.append(t)
        if node.get("nullable") and types:
            types.append("null")
        if types:
            out["type"] = types[0] if len(types) == 1 else types
        for k in ("enum", "const", "default", "pattern", "minimum", "maximum", "minLength", "maxLength",
                  "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "multipleOf"):
            if k in node:
                out[k] = copy.deepcopy(node[k])
        if "enum" in out and node.get("nullable") and None not in out["enum"]:
            out["enum"].append(None)
        for k, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if node.get(k) is True and bound in out:
                out[k] = out.pop(bound)
        for k in ("oneOf", "anyOf", "allOf"):
            if isinstance(node.get(k), list):
                subs = [self.convert(s, root, path) for s in node[k]]
                if node.get("nullable") and k != "allOf" and not types:
                    subs.append({"type": "null"})
                out.setdefault("anyOf" if k != "allOf" else "allOf", []).extend(subs)
        if "not" in node:
            out["not"] = self.convert(node["not"], root, path)
        facts = self.facts.get(root) or _Facts()
        props = node.get("properties")
        if isinstance(props, dict):
            out["properties"] = {k: self.convert(v, root, (*path, k)) for k, v in props.items()}
            for k, sub in out["properties"].items():
                # the encoder drops some defaults (`*[] | [...string]`); the text still has them
                if "default" not in sub and (*path, k) in facts.defaults:
                    literal = _literal(facts.defaults[(*path, k)])
                    if literal is not _NO_LITERAL:
                        sub["default"] = literal
            req = [r for r in node.get("required") or [] if r in props and "default" not in out["properties"][r]
                   and (*path, r) not in facts.defaults and (*path, r) not in facts.conditional
                   and not _concrete_when_absent(out["properties"][r])]
            if req:
                out["required"] = req
        elif node.get("required"):
            out["required"] = list(node["required"])
        addl = node.get("additionalProperties")
        if isinstance(addl, dict):
            out["additionalProperties"] = self.convert(addl, root, (*path, "*"))
        elif isinstance(props, dict) and props and addl is None and path not in facts.open:
            out["additionalProperties"] = False
        if isinstance(node.get("items"), dict):
            out["items"] = self.convert(node["items"], root, (*path, "[]"))
        if out.get("type") == "array" and path in facts.items and "default" not in out:
            low, high = facts.items[path]
            out.setdefault("minItems", low)
            if high is not None:
                out.setdefault("maxItems", high)
        if "type" not in out and "anyOf" not in out and "allOf" not in out and (props or addl is not None):
            out["type"] = "object"
        return out


def _concrete_when_absent(schema: dict[str, Any]) -> bool:
    """A field CUE makes concrete by itself: an open list (`[...T]` is `[]`) or a struct none of
    whose fields must be given (`{[string]: string}` is `{}`, a struct of defaults is filled in)."""
    types = schema.get("type")
    if types == "array":
        return not schema.get("minItems") and "prefixItems" not in schema
    if types == "object":
        return not schema.get("required") and "anyOf" not in schema and "allOf" not in schema
    return False


def _description(raw: Any) -> str:
    """`+usage=` text of a comment; other `+tag` lines dropped; plain lines kept."""
    if not isinstance(raw, str):
        return ""
    usage: list[str] = []
    plain: list[str] = []
    for line in raw.splitlines():
        s = line.strip()
        m = _TAG_LINE.match(s)
        if m:
            if m.group(1) == "usage" and m.group(2):
                usage.append(m.group(2).strip())
        elif s:
            plain.append(s)
    return " ".join(usage) if usage else " ".join(plain)


def _open_schema(plan: _Plan) -> dict[str, Any]:
    return _finish(plan, {}, {})


def _assemble(plan: _Plan, answers: dict[str, Any]) -> dict[str, Any]:
    conv = _Converter(plan, answers)
    root = conv.root()
    if plan.alternatives and "anyOf" in root and plan.default_alt >= 0:
        root["x-velapy-default-alternative"] = plan.default_alt
    return _finish(plan, root, conv.defs)


def _finish(plan: _Plan, root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    d = plan.definition
    out: dict[str, Any] = {
        "$schema": DIALECT,
        "title": f"{d.name} ({d.kind}) parameter",
    }
    if d.description:
        out["description"] = d.description
    out.update(root)
    if defs:
        out["$defs"] = dict(sorted(defs.items()))
    out["x-velapy-definition"] = {"kind": d.kind, "name": d.name, "digest": digest(d)}
    if plan.notes:
        out["x-velapy-notes"] = list(dict.fromkeys(plan.notes))
    return out


# --------------------------------------------------------------------------------------------
# what OpenAPI does not show: open structs and dropped defaults (source text scan)


@dataclass
class _Facts:
    open: set[tuple[str, ...]] = field(default_factory=set)  # structs with `...` or a comprehension
    defaults: dict[tuple[str, ...], str] = field(default_factory=dict)  # field → text of its `*` default
    # fields declared inside an `if` clause: required only when the app takes that branch
    conditional: set[tuple[str, ...]] = field(default_factory=set)
    # lists of required elements (`[string, ...string]`): field → (minItems, maxItems or None)
    items: dict[tuple[str, ...], tuple[int, int | None]] = field(default_factory=dict)


_NO_LITERAL = object()


def _literal(text: str) -> Any:
    """The value of a literal default (`[]`, `"TCP"`, `5`), or _NO_LITERAL for anything else."""
    try:
        return parse_value(text)
    except CueSyntaxError:
        return _NO_LITERAL


@dataclass
class _Frame:
    kind: str  # "{", "[", "("
    path: tuple[str, ...]
    label: str = ""  # label of the field whose value is being read ("" at an element start)
    start: bool = True  # at the start of an element
    conditional: bool = False  # the struct of an `if` clause


def _text_facts(text: str) -> _Facts:
    """Paths (labels, `[]` for list items, `*` for pattern values) of open structs and of defaults."""
    facts = _Facts()
    if not text:
        return facts
    try:
        toks = [t for t in tokenize(text) if t.kind != "comment"]
    except CueSyntaxError:
        return facts
    out = facts.open
    stack: list[_Frame] = [_Frame("(", ())]  # the expression itself: a value position
    stack[0].start = False
    first = [t for t in toks[:3] if t.kind != "newline"]
    if len(first) > 1 and first[0].kind in ("ident", "string") and first[1].kind == "punct" \
            and first[1].text in (":", "?", "!"):
        stack[0] = _Frame("{", ())  # a struct written without braces: `parameter: names: [...]`
    i = 0
    while i < len(toks):
        t = toks[i]
        top = stack[-1]
        if t.kind == "eof":
            break
        if t.kind == "newline" or (t.kind == "punct" and t.text == ","):
            if top.kind == "{":
                top.start, top.label = True, ""
            i += 1
            continue
        if top.kind == "{" and top.start:
            top.start = False
            nxt = toks[i + 1] if i + 1 < len(toks) else t
            if t.kind in ("ident", "string") and t.text not in ("if", "for", "let") and \
                    nxt.kind == "punct" and nxt.text in (":", "?", "!"):
                label = t.text if t.kind == "ident" else _unquote_simple(t)
                i += 1
                while toks[i].kind == "punct" and toks[i].text in ("?", "!"):
                    i += 1
                i += 1  # the colon
                top.label = label
                if top.conditional:
                    facts.conditional.add((*top.path, label))
                # a chain `a: b: {`: further labels extend the path
                while toks[i].kind in ("ident", "string") and toks[i + 1].kind == "punct" and \
                        toks[i + 1].text in (":", "?", "!") and toks[i].text not in ("true", "false", "null"):
                    sub = toks[i].text if toks[i].kind == "ident" else _unquote_simple(toks[i])
                    top.label = top.label + "\x00" + sub
                    i += 1
                    while toks[i].kind == "punct" and toks[i].text in ("?", "!"):
                        i += 1
                    i += 1
                if toks[i].kind == "punct" and toks[i].text == "*":
                    facts.defaults[_value_path(top)] = _default_text(text, toks, i + 1)
                elif toks[i].kind == "punct" and toks[i].text == "[":
                    shape = _list_shape(text, toks, i)
                    if shape is not None and shape[0] and _default_text(text, toks, i).endswith("]") \
                            and len(_default_text(text, toks, i)) == shape[2] - toks[i].start:
                        # the whole value is the list (not `[string] | null`)
                        facts.items[_value_path(top)] = (len(shape[0]), None if shape[1] else len(shape[0]))
                continue
            if t.kind == "punct" and t.text == "[":
                # a pattern constraint `[string]: T`
                depth = 0
                while i < len(toks):
                    if toks[i].kind == "punct" and toks[i].text == "[":
                        depth += 1
                    elif toks[i].kind == "punct" and toks[i].text == "]":
                        depth -= 1
                        if depth == 0:
                            break
                    i += 1
                i += 1
                if i < len(toks) and toks[i].text == ":":
                    top.label = "*"
                    i += 1
                continue
            if t.kind == "punct" and t.text == "...":
                out.add(top.path)
                i += 1
                continue
            if t.kind == "ident" and t.text in ("if", "for"):
                out.add(top.path)
                # the clause's struct adds fields to this same struct
                while i < len(toks) and not (toks[i].kind == "punct" and toks[i].text == "{"):
                    i += 1
                stack.append(_Frame("{", top.path, conditional=t.text == "if"))
                i += 1
                continue
            if t.kind == "punct" and t.text == "(":
                out.add(top.path)  # a dynamic label
                continue
            # an embedded value: its structs add fields to this struct
            top.label = "\x01"
            continue
        if t.kind == "punct" and t.text in ("{", "[", "("):
            stack.append(_Frame(t.text, _value_path(top), start=t.text == "{"))
            if t.text != "{":
                stack[-1].start = False
            i += 1
            continue
        if t.kind == "punct" and t.text in ("}", "]", ")"):
            if len(stack) > 1:
                stack.pop()
            i += 1
            continue
        i += 1
    return facts


def _default_text(text: str, toks: list[Token], i: int) -> str:
    """Source text of a default: from toks[i] to the `|`, newline or `,` ending it."""
    depth = 0
    j = i
    while j < len(toks):
        t = toks[j]
        if t.kind == "eof":
            break
        if t.kind == "punct" and t.text in ("{", "[", "("):
            depth += 1
        elif t.kind == "punct" and t.text in ("}", "]", ")"):
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (t.kind == "newline" or (t.kind == "punct" and t.text in ("|", ","))):
            break
        j += 1
    end = toks[j].start if j < len(toks) else len(text)
    return text[toks[i].start:end].strip() if i < len(toks) else ""


def _value_path(frame: _Frame) -> tuple[str, ...]:
    """Path of a value opened inside `frame` (a field's value, a list's items, a parenthesis)."""
    if frame.kind == "[":
        return (*frame.path, "[]")
    if frame.kind == "(":
        return frame.path
    if frame.label == "\x01" or not frame.label:
        return frame.path
    return (*frame.path, *frame.label.split("\x00"))


def _unquote_simple(tok: Token) -> str:
    text = tok.text
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        try:
            return str(json.loads(text))
        except json.JSONDecodeError:
            return text[1:-1]
    return text


# --------------------------------------------------------------------------------------------
# checked-in schemas


def read_checked_in(d: Definition, root: Path = DEFINITION_SCHEMA_DIR) -> dict[str, Any] | None:
    """The checked-in schema of `d` when it was generated from this very definition, else None."""
    path = schema_file(d, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    meta = data.get("x-velapy-definition") if isinstance(data, dict) else None
    if not isinstance(meta, dict) or meta.get("digest") != digest(d):
        return None
    return dict(data)


def dump_schema(schema: dict[str, Any]) -> str:
    """The checked-in text of a schema (stable: 2-space JSON, a final newline)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


EDITOR_SCHEMA = SCHEMA_ROOT / "application-editor.schema.json"
_EDITOR_SLOTS = {"component": ("component",), "trait": ("trait",), "policy": ("policy",),
                 "workflow-step": ("step", "subStep")}


def editor_schema(definitions: Sequence[Definition], root: Path = SCHEMA_ROOT) -> dict[str, Any]:
    """The Application schema with each `properties` tied to its definition's parameter schema.

    For editors (yaml-language-server): `type: webservice` makes `properties` complete and check as
    webservice's parameters. velapy's own validation keeps using application.schema.json and the
    per-definition schemas, for its located messages.
    """
    app: dict[str, Any] = json.loads((root / "application.schema.json").read_text(encoding="utf-8"))
    app["$id"] = str(app.get("$id", "")).replace("application.schema.json", EDITOR_SCHEMA.name)
    app["title"] = str(app.get("title", "")) + ", with each definition's parameters"
    for kind, slots in _EDITOR_SLOTS.items():
        rules = []
        for d in sorted((d for d in definitions if d.kind == kind and d.template is not None), key=lambda d: d.name):
            ref = schema_file(d, root / "definitions").relative_to(root).as_posix()
            rules.append({"if": {"properties": {"type": {"const": d.name}}, "required": ["type"]},
                          "then": {"properties": {"properties": {"$ref": ref}}}})
        for slot in slots:
            if slot in app.get("$defs", {}) and rules:
                app["$defs"][slot]["allOf"] = rules
    return app


def write_schemas(generated: Generated, definitions: Sequence[Definition], root: Path = DEFINITION_SCHEMA_DIR,
                  prune: bool = True) -> list[Path]:
    """Write every generated schema; drop files of definitions that no longer exist. Changed files."""
    changed: list[Path] = []
    wanted: set[Path] = set()
    for d in definitions:
        schema = generated.schemas.get(key_of(d))
        if schema is None:
            continue
        path = schema_file(d, root)
        wanted.add(path)
        text = dump_schema(schema)
        try:
            if path.read_text(encoding="utf-8") == text:
                continue
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    if prune and root.is_dir():
        for path in sorted(root.rglob("*.schema.json")):
            if path not in wanted:
                path.unlink()
                changed.append(path)
    return changed


# --------------------------------------------------------------------------------------------
# reading a schema as a table (velapy def show)


@dataclass(frozen=True)
class ParameterRow:
    path: str
    type: str
    default: str
    required: bool
    description: str


def parameter_rows(schema: dict[str, Any]) -> list[ParameterRow]:
    """One row per parameter, nested ones as `ports[].port`; alternatives one after the other."""
    rows: list[ParameterRow] = []
    defs = schema.get("$defs") or {}
    _rows(schema, "", defs, rows, set(), True)
    return rows


def _resolve(node: Any, defs: dict[str, Any], seen: set[str]) -> tuple[Any, set[str]]:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return {}, seen
        seen = seen | {name}
        merged = dict(defs.get(name) or {})
        if node.get("description") and not merged.get("description"):
            merged["description"] = node["description"]
        node = merged
    if isinstance(node, dict) and isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        inner, seen = _resolve(node["allOf"][0], defs, seen)
        merged = {**inner, **{k: v for k, v in node.items() if k != "allOf"}}
        return merged, seen
    return node, seen


def type_text(node: Any, defs: dict[str, Any]) -> str:
    node, _ = _resolve(node, defs, set())
    if not isinstance(node, dict):
        return ""
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    if isinstance(node.get("anyOf"), list):
        return " | ".join(type_text(s, defs) or "any" for s in node["anyOf"])
    t = node.get("type")
    names = [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []
    shown: list[str] = []
    for n in names:
        if n == "array":
            item = type_text(node.get("items"), defs) or "any"
            shown.append(f"[]{item}" if " " not in item else f"[]({item})")
        elif n == "object":
            addl = node.get("additionalProperties")
            if isinstance(addl, dict) and not node.get("properties"):
                shown.append(f"map[string]{type_text(addl, defs) or 'any'}")
            else:
                shown.append("object")
        else:
            shown.append(n)
    text = " | ".join(shown)
    if "pattern" in node:
        text += f" =~{node['pattern']}"
    for k, sym in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if k in node:
            text += f" {sym}{node[k]}"
    return text


def _rows(node: Any, prefix: str, defs: dict[str, Any], rows: list[ParameterRow], seen: set[str],
          required: bool) -> None:
    node, seen = _resolve(node, defs, seen)
    if not isinstance(node, dict):
        return
    if isinstance(node.get("anyOf"), list) and not node.get("properties"):
        structured = [s for s in node["anyOf"] if isinstance(_resolve(s, defs, seen)[0], dict)
                      and _resolve(s, defs, seen)[0].get("properties")]
        if structured:
            for k, s in enumerate(node["anyOf"]):
                if k:
                    rows.append(ParameterRow(f"{prefix + ' ' if prefix else ''}(or, instead of the above)", "", "",
                                             False, "an alternative set of parameters"))
                _rows(s, prefix, defs, rows, seen, required)
            return
    props = node.get("properties")
    if isinstance(props, dict):
        req = set(node.get("required") or [])
        for name, sub in props.items():
            path = f"{prefix}.{name}" if prefix else name
            sub_r, sub_seen = _resolve(sub, defs, seen)
            if not isinstance(sub_r, dict):
                continue
            default = json.dumps(sub_r["default"]) if "default" in sub_r else ""
            rows.append(ParameterRow(path, type_text(sub_r, defs), default, name in req,
                                     str(sub_r.get("description", ""))))
            if sub_r.get("properties") or isinstance(sub_r.get("anyOf"), list):
                _rows(sub_r, path, defs, rows, sub_seen, name in req)
            items = sub_r.get("items")
            if isinstance(items, dict):
                item_r, item_seen = _resolve(items, defs, sub_seen)
                if isinstance(item_r, dict) and (item_r.get("properties") or isinstance(item_r.get("anyOf"), list)):
                    _rows(item_r, f"{path}[]", defs, rows, item_seen, False)
            addl = sub_r.get("additionalProperties")
            if isinstance(addl, dict):
                addl_r, addl_seen = _resolve(addl, defs, sub_seen)
                if isinstance(addl_r, dict) and addl_r.get("properties"):
                    _rows(addl_r, f"{path}.<key>", defs, rows, addl_seen, False)
    elif isinstance(node.get("additionalProperties"), dict) and not prefix:
        rows.append(ParameterRow("<key>", type_text(node["additionalProperties"], defs), "", False,
                                 "any key"))
