"""JSON Schema errors → messages a person can act on: (JSON path, message, hint) per problem.

In: a jsonschema validator, the instance it checked, and whether its fields are called "field"
(documents) or "parameter" (a definition's properties). Out: one line per real problem — the
expected and found types, a missing field with its type, an unknown field with the closest known
name (`did_you_mean`), the alternative of a oneOf/anyOf that came closest — instead of jsonschema's
own text, and never a Secret's value (only its type is described).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported when a schema is first checked, not when velapy starts
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from velapy.validate import schemagen

JsonPath = tuple[str | int, ...]

def explain_all(validator: Draft202012Validator, instance: Any, noun: str,
                filled: frozenset[tuple[str, ...]] = frozenset()) -> list[tuple[JsonPath, str, str]]:
    """(path, message, hint) for every error of `instance`; `noun` is "field" or "parameter".

    `filled` are paths given a value later (step / component `inputs[].parameterKey`): a missing
    required field on the way to one of them is not an error.
    """
    out: list[tuple[JsonPath, str, str]] = []
    for err in validator.iter_errors(instance):
        out.extend(_explain(err, noun, filled))
    return list(dict.fromkeys(out))


def _filled_later(path: JsonPath, name: str, filled: frozenset[tuple[str, ...]]) -> bool:
    want = (*(str(p) for p in path), name)
    return any(f[:len(want)] == want for f in filled)


def _explain(err: ValidationError, noun: str,
             filled: frozenset[tuple[str, ...]] = frozenset()) -> list[tuple[JsonPath, str, str]]:
    path: JsonPath = tuple(err.absolute_path)
    kind = str(err.validator)
    value: Any = err.validator_value
    inst = err.instance
    schema = err.schema if isinstance(err.schema, dict) else {}
    if kind == "type":
        return [(path, f"expected {_expected_types(value)}, found {_describe(inst)}", "")]
    if kind == "required" and isinstance(inst, dict):
        out = []
        props = schema.get("properties") or {}
        for name in value:
            if name not in inst and not _filled_later(path, name, filled):
                t = _short_type(props.get(name), schema)
                out.append((path, f'missing required {noun} "{name}"' + (f" ({t})" if t else ""), ""))
        return out
    if kind == "additionalProperties" and isinstance(inst, dict):
        declared = list((schema.get("properties") or {}).keys())
        out = []
        for key in inst:
            if key not in declared:
                free = [k for k in declared if k not in inst]
                out.append(((*path, key), f'unknown {noun} "{key}"', did_you_mean(key, free or declared)))
        return out
    if kind == "enum":
        choices = ", ".join(json.dumps(v) for v in value)
        hint = did_you_mean(inst, [v for v in value if isinstance(v, str)]) if isinstance(inst, str) else ""
        return [(path, f"expected one of {choices}, found {_describe(inst)}", hint)]
    if kind == "const":
        hint = did_you_mean(inst, [value]) if isinstance(inst, str) and isinstance(value, str) else ""
        return [(path, f"expected {json.dumps(value)}, found {_describe(inst)}", hint)]
    if kind == "pattern":
        hint = str(schema.get("x-pattern-hint") or "")
        return [(path, f"expected a string matching {value}, found {_describe(inst)}", hint)]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sym = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return [(path, f"expected a number {sym} {value}, found {_describe(inst)}", "")]
    if kind in ("minItems", "maxItems"):
        word = "at least" if kind == "minItems" else "at most"
        unit = "item" if value == 1 else "items"
        return [(path, f"expected {word} {value} {unit}, found {len(inst) if isinstance(inst, list) else 0}", "")]
    if kind in ("minLength", "maxLength"):
        if kind == "minLength" and value == 1:
            return [(path, f"expected a non-empty string, found {_describe(inst)}", "")]
        word = "at least" if kind == "minLength" else "at most"
        return [(path, f"expected a string of {word} {value} characters, found {_describe(inst)}", "")]
    if kind in ("anyOf", "oneOf"):
        return _explain_alternatives(err, noun, path, filled)
    return [(path, err.message, "")]


def _explain_alternatives(err: ValidationError, noun: str, path: JsonPath,
                          filled: frozenset[tuple[str, ...]]) -> list[tuple[JsonPath, str, str]]:
    """A value matching none of the alternatives: the errors of the alternative it came closest to."""
    branches: dict[int, list[ValidationError]] = {}
    for sub in err.context or []:
        idx = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        branches.setdefault(int(idx), []).append(sub)
    if not branches:
        return [(path, err.message, "")]
    alternatives = err.validator_value if isinstance(err.validator_value, list) else []
    # all alternatives rejected the value's type: one message naming every accepted type
    shapes = []
    for i, alt in enumerate(alternatives):
        subs = branches.get(i, [])
        if len(subs) == 1 and str(subs[0].validator) in ("type", "enum", "const") \
                and tuple(subs[0].absolute_path) == path:
            shapes.append(_alternative_text(alt, subs[0]))
        else:
            shapes = []
            break
    if shapes:
        return [(path, f"expected {' or '.join(dict.fromkeys(shapes))}, found {_describe(err.instance)}", "")]
    schema = err.schema if isinstance(err.schema, dict) else {}
    preferred = schema.get("x-velapy-default-alternative", 0)

    def score(i: int) -> tuple[int, int, int, int]:
        subs = branches.get(i, [])
        here = [s for s in subs if tuple(s.absolute_path) == path]
        wrong_shape = sum(1 for s in here if str(s.validator) == "type")
        # an alternative that does not even know the given keys is the wrong one to explain
        unknown = sum(1 for s in here if str(s.validator) == "additionalProperties")
        return (wrong_shape, unknown, len(subs), 0 if i == preferred else 1)

    best = min(branches, key=score)
    out: list[tuple[JsonPath, str, str]] = []
    for sub in branches[best]:
        out.extend(_explain(sub, noun, filled))
    return out


def _alternative_text(alt: Any, sub: ValidationError) -> str:
    value: Any = sub.validator_value
    if str(sub.validator) == "type":
        return _expected_types(value)
    if str(sub.validator) == "enum":
        return "one of " + ", ".join(json.dumps(v) for v in value)
    return json.dumps(value)


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "a boolean", "null": "null"}


def _expected_types(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value or [])
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean {json.dumps(value)}"
    if isinstance(value, int):
        return f"an integer {value}"
    if isinstance(value, float):
        return f"a number {json.dumps(value)}"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"a string {json.dumps(text, ensure_ascii=False)}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    return type(value).__name__


def _short_type(node: Any, schema: dict[str, Any]) -> str:
    if not isinstance(node, dict):
        return ""
    text = schemagen.type_text(node, schema.get("$defs") or {})
    return text if len(text) <= 60 and "any" not in text and "$ref" not in node else ""


def did_you_mean(name: Any, choices: Sequence[str]) -> str:
    if not isinstance(name, str) or not choices:
        return ""
    for c in choices:
        if c.lower() == name.lower():
            return f'did you mean "{c}"?'
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f'did you mean "{close[0]}"?' if close else ""


__all__ = ["JsonPath", "did_you_mean", "explain_all"]
