"""Trait patches: (current workload JSON, concrete patch JSON, comment tags) → patched workload JSON.

The CUE engine evaluates a trait template; what reaches this module is the value of its `patch`
field as plain JSON plus the `// +key=value` comment tags the engine found on the patch's fields,
keyed by their path inside the patch. This module then does what KubeVela's strategy unify does
(kubevela/workflow `pkg/cue/model/sets`), on data instead of CUE syntax:

* default strategy: unify base and patch (structs merge key by key, equal scalars unify, anything
  else conflicts), after rewriting lists per `+patchKey` / `+patchStrategy` tags;
* `+patchStrategy=jsonMergePatch` on the patch itself: RFC 7386 merge;
* `+patchStrategy=jsonPatch` on the patch itself: RFC 6902 operations from `patch.operations`.

Inputs are never mutated; every result is new data. Conflicts raise `PatchError`.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from velapy.errors import Diagnostic, InputError, Location

JSON = Any  # dict / list / str / int / float / bool / None
Path = tuple[str | int, ...]  # struct keys are str, list indices int; relative to the patch root
Tags = Mapping[Path, Mapping[str, str]]  # () holds the tags on the `patch` field itself

TAG_PATCH_KEY: Final = "patchKey"
TAG_PATCH_STRATEGY: Final = "patchStrategy"
RETAIN_KEYS: Final = "retainKeys"
REPLACE: Final = "replace"
JSON_MERGE_PATCH: Final = "jsonMergePatch"
JSON_PATCH: Final = "jsonPatch"

__all__ = [
    "JSON",
    "JSON_MERGE_PATCH",
    "JSON_PATCH",
    "REPLACE",
    "RETAIN_KEYS",
    "TAG_PATCH_KEY",
    "TAG_PATCH_STRATEGY",
    "PatchError",
    "Path",
    "Tags",
    "apply_patch",
    "json_merge_patch",
    "json_patch",
    "strategy_unify",
]


class PatchError(InputError):
    """A patch could not be applied.

    `path` and `message` describe the first problem; `problems` holds every (path, message) found,
    because unification reports all conflicts at once, as CUE does.
    """

    def __init__(self, path: str, message: str, more: Sequence[tuple[str, str]] = ()) -> None:
        self.path = path
        self.message = message
        self.problems: tuple[tuple[str, str], ...] = ((path, message), *more)
        super().__init__([Diagnostic(m, Location(path=p)) for p, m in self.problems])


def apply_patch(base: JSON, patch: JSON, tags: Tags) -> JSON:
    """Apply a trait's `patch` to `base` with the strategy named by the tags on `patch` itself."""
    strategy = tags.get((), {}).get(TAG_PATCH_STRATEGY, "")
    if strategy == JSON_MERGE_PATCH:
        return json_merge_patch(base, patch)
    if strategy == JSON_PATCH:
        operations = patch.get("operations") if isinstance(patch, dict) else None
        if not isinstance(operations, list):
            raise PatchError("operations", "a jsonPatch patch needs a list of operations here")
        return json_patch(base, operations)
    return strategy_unify(base, patch, tags)


# --- default strategy ----------------------------------------------------------------------------
#
# Upstream works on CUE syntax: it walks the patch top-down, rewrites each tagged list of the patch
# (and sometimes the base) in place, then unifies the two trees. Because every rewrite happens
# before the walker descends, list positions in the rewritten patch line up with the base, so the
# same result comes from one recursive merge that rewrites a list just before merging into it.
#
# Two upstream details shape the code below:
# * tags are looked up by *patch* path (the position a value had in the trait's patch), while
#   errors name the *result* path (the position in the workload), so both are carried along;
# * where upstream makes the base share the patch's own syntax node (`retainKeys` on a non-list
#   field, `replace` on a list), the rest of that subtree is the patch unified with itself; keyed
#   lists in it are still rewritten (dropping items without the key, for instance). `own` is that
#   self-unification.

_Item = tuple[JSON, int]  # a list element and its index in the patch list (-1: none)
_MISSING: Final = object()


class _Unifier:
    """One strategy-unify run: the tags to consult and the conflicts found so far."""

    def __init__(self, tags: Tags) -> None:
        self.tags = tags
        self.problems: list[tuple[str, str]] = []

    def own_tags(self, patch_path: Path) -> Mapping[str, str]:
        return self.tags.get(patch_path, {})

    def merge(self, base: JSON, patch: JSON, ppath: Path, rpath: Path, key: str) -> JSON:
        """Unify `patch` (at patch path `ppath`) into `base` (at result path `rpath`).

        `key` is the `patchKey` inherited from the nearest tagged ancestor ("" when none).
        """
        if isinstance(base, dict) and isinstance(patch, dict):
            return self.merge_struct(base, patch, ppath, rpath, key)
        if isinstance(base, list) and isinstance(patch, list):
            items = [(value, index) for index, value in enumerate(patch)]
            return self.merge_positional(base, items, ppath, rpath, key)
        if _kind(base) != _kind(patch):
            self.problems.append(
                (
                    _dotted(rpath),
                    f"conflicting values {_show(base)} and {_show(patch)} "
                    f"(mismatched types {_kind(base)} and {_kind(patch)})",
                )
            )
            return copy.deepcopy(base)
        if base != patch:
            # CUE names the patch's value first when two values of one kind differ.
            self.problems.append((_dotted(rpath), f"conflicting values {_show(patch)} and {_show(base)}"))
        return copy.deepcopy(base)

    def merge_struct(self, base: dict[str, JSON], patch: dict[str, JSON], ppath: Path, rpath: Path, key: str) -> JSON:
        out = {name: copy.deepcopy(value) for name, value in base.items()}
        for name, pvalue in patch.items():
            cpath, crpath = (*ppath, name), (*rpath, name)
            field_tags = self.own_tags(cpath)
            ckey = field_tags.get(TAG_PATCH_KEY, key)  # a field's own patchKey beats the inherited one
            strategy = field_tags.get(TAG_PATCH_STRATEGY, "")  # never inherited
            if name not in base:
                # Nothing in the base to rewrite or to look up: the patch value is taken as is.
                out[name] = copy.deepcopy(pvalue)
                continue
            bvalue = base[name]
            if isinstance(pvalue, list):
                out[name] = self.merge_list_field(bvalue, pvalue, cpath, crpath, ckey, strategy)
            elif strategy == RETAIN_KEYS:
                # The base value is swapped for the patch value, so it cannot conflict.
                out[name] = self.own(pvalue, cpath, ckey)
            else:
                out[name] = self.merge(bvalue, pvalue, cpath, crpath, ckey)
        return out

    def merge_list_field(
        self, base: JSON, patch: list[JSON], ppath: Path, rpath: Path, key: str, strategy: str
    ) -> JSON:
        if not isinstance(base, list):
            return self.merge(base, patch, ppath, rpath, key)  # reports the kind conflict
        items = [(value, index) for index, value in enumerate(patch)]
        if strategy == REPLACE:
            return [self.own(value, (*ppath, index), key) for value, index in items]
        if key:
            base_items, slots = _keyed_slots([(value, -1) for value in base], items, key, strategy)
            base = [value for value, _ in base_items]
            if slots is not None:
                items = slots
        return self.merge_positional(base, items, ppath, rpath, key)

    def merge_positional(self, base: list[JSON], items: list[_Item], ppath: Path, rpath: Path, key: str) -> JSON:
        # The base list is open (upstream appends `...` to every base list), so a longer patch
        # extends it. The patch list arrives as data and has lost any `...` the trait wrote; we
        # treat a shorter patch list as open as well and keep the remaining base items. Real CUE
        # would reject a closed shorter list ("incompatible list lengths"): this is a deliberate
        # leniency, since we cannot tell `[{...}]` from `[{...}, ...]` here.
        out: list[JSON] = []
        for position in range(max(len(base), len(items))):
            if position >= len(items):
                out.append(copy.deepcopy(base[position]))
            elif position >= len(base):
                out.append(copy.deepcopy(items[position][0]))
            else:
                value, index = items[position]
                out.append(self.merge(base[position], value, (*ppath, index), (*rpath, position), key))
        return out

    def own(self, patch: JSON, ppath: Path, key: str) -> JSON:
        """The patch subtree unified with itself (upstream: base and patch share one node)."""
        if isinstance(patch, dict):
            out: dict[str, JSON] = {}
            for name, value in patch.items():
                cpath = (*ppath, name)
                field_tags = self.own_tags(cpath)
                ckey = field_tags.get(TAG_PATCH_KEY, key)
                strategy = field_tags.get(TAG_PATCH_STRATEGY, "")
                if isinstance(value, list):
                    items = [(element, index) for index, element in enumerate(value)]
                    if strategy != REPLACE and ckey:
                        base_items, slots = _keyed_slots(items, items, ckey, strategy)
                        # Upstream rewrites the shared list: the slots become base and patch alike;
                        # when the rewrite is abandoned, blanks it already made in the base remain.
                        items = slots if slots is not None else base_items
                    out[name] = [self.own(element, (*cpath, index), ckey) for element, index in items]
                else:
                    out[name] = self.own(value, cpath, ckey)
            return out
        if isinstance(patch, list):
            return [self.own(element, (*ppath, index), key) for index, element in enumerate(patch)]
        return patch


def strategy_unify(base: JSON, patch: JSON, tags: Tags) -> JSON:
    """Merge `patch` into `base` honouring `+patchKey` and `+patchStrategy` tags (KubeVela §3)."""
    unifier = _Unifier(tags)
    result = unifier.merge(base, patch, (), (), "")
    if unifier.problems:
        (path, message), *more = unifier.problems
        raise PatchError(path, message, more)
    return result


def _keyed_slots(
    base: list[_Item], patch: list[_Item], key_spec: str, strategy: str
) -> tuple[list[_Item], list[_Item] | None]:
    """Rewrite a patch list for merging by key (upstream `listMergeProcess`).

    Returns the base list (with items blanked to `{}` where `retainKeys` replaces them) and the
    patch slots to unify positionally with it, or None when the patch is to be merged by position
    unchanged. For each key of a comma list in turn: one slot per base item having that key, in
    base order (the matching patch item, or `{}`); then the unmatched patch items in patch order.
    Patch items lacking every key are dropped. Slots are made key by key, so with several keys the
    positional unify is only right when the base is grouped in key order (Open question 6) — kept
    on purpose. No patch item has the key (in a non-empty list), or a key's value is not a scalar:
    no rewrite at all.
    """
    base = list(base)
    pending: dict[tuple[str, str], int] = {}  # (key, literal value) -> index of the patch item
    slots: list[_Item] = []
    for key in key_spec.split(","):
        steps = key.split(".")
        found = False
        for position, (value, _) in enumerate(patch):
            hit = _find(value, steps)
            if hit is _MISSING:
                continue
            found = True
            if not _is_scalar(hit):
                return base, None
            pending[(key, _literal(hit))] = position  # a repeated key: the last item wins
        if not found:
            if patch:
                return base, None
            continue
        for position, (value, _) in enumerate(base):
            hit = _find(value, steps)
            if hit is _MISSING:
                continue
            if not _is_scalar(hit):
                return base, None
            match = pending.pop((key, _literal(hit)), None)
            if match is None:
                slots.append(({}, -1))
            else:
                if strategy == RETAIN_KEYS:
                    base[position] = ({}, -1)  # the patch item replaces this one wholesale
                slots.append(patch[match])
    unmatched = set(pending.values())
    slots.extend(item for position, item in enumerate(patch) if position in unmatched)
    return base, slots


def _find(value: JSON, steps: Sequence[str]) -> JSON:
    """The value at a dotted key inside a list item, or _MISSING (list steps are indices)."""
    for step in steps:
        if isinstance(value, dict) and step in value:
            value = value[step]
        elif isinstance(value, list) and re.fullmatch(r"0|[1-9][0-9]*", step) and int(step) < len(value):
            value = value[int(step)]
        else:
            return _MISSING
    return value


def _is_scalar(value: JSON) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _literal(value: JSON) -> str:
    # Upstream compares key values by their CUE literal text, so 1, 1.0, "1" and true all differ.
    return json.dumps(value, sort_keys=True)


def _kind(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "struct"


_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _show(value: JSON) -> str:
    """A value the way CUE prints it in an error: `"x"`, `1`, `[1,2]`, `{a:1}`."""
    if isinstance(value, dict):
        fields = ",".join(
            f"{name if _IDENT.fullmatch(name) else json.dumps(name)}:{_show(v)}" for name, v in value.items()
        )
        return "{" + fields + "}"
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _dotted(path: Path) -> str:
    """`spec.template.spec.containers[0].image`; keys that are not identifiers go in brackets."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out


# --- RFC 7386 JSON merge patch ---------------------------------------------------------------------
#
# Follows github.com/evanphx/json-patch v5.7.0 (what KubeVela calls), which differs from the RFC's
# pseudo-code in one place: a value added where the base has nothing (or a non-object) has its
# nulls pruned in nested objects, also inside lists; a null *in* a list is kept.


def json_merge_patch(base: JSON, patch: JSON) -> JSON:
    """RFC 7386: objects merge recursively, `null` deletes a key, anything else replaces."""
    if base is None:
        raise PatchError("", "jsonMergePatch needs a base document")
    if isinstance(patch, dict):
        if isinstance(base, dict):
            return _merge_objects(base, patch)
        return _prune_nulls(patch)
    if isinstance(patch, list):
        return _prune_nulls(patch)
    raise PatchError("", f"a jsonMergePatch patch must be an object or a list, not {_kind(patch)}")


def _merge_objects(base: dict[str, JSON], patch: dict[str, JSON]) -> dict[str, JSON]:
    out = {name: copy.deepcopy(value) for name, value in base.items()}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        elif not isinstance(out.get(name), dict):
            # Nothing (or null, or a non-object) to merge into: the patch value, nulls pruned.
            out[name] = _prune_nulls(value)
        elif isinstance(value, dict):
            out[name] = _merge_objects(out[name], value)
        else:
            out[name] = copy.deepcopy(value)
    return out


def _prune_nulls(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {name: _prune_nulls(v) for name, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


# --- RFC 6902 JSON patch ---------------------------------------------------------------------------
#
# RFC 6902 with the lenient spots of evanphx/json-patch v5.7.0 that trait authors may rely on:
# negative array indices count from the end; `replace` of a missing object member adds it; `test`
# of a missing object member compares as null; an operation without `value` uses null. A pointer
# that does not start with "/" is an error here (evanphx silently drops its first segment).


def json_patch(base: JSON, operations: list[JSON]) -> JSON:
    """Apply RFC 6902 operations in order; the first failing one raises PatchError at
    `operations[i]`."""
    doc = copy.deepcopy(base)
    for number, operation in enumerate(operations):
        where = f"operations[{number}]"
        if not isinstance(operation, dict):
            raise PatchError(where, f"an operation must be an object, not {_kind(operation)}")
        kind = operation.get("op")
        if not isinstance(kind, str) or kind not in _OPERATIONS:
            raise PatchError(where, f"unknown operation {_show(kind)}")
        doc = _OPERATIONS[kind](doc, operation, where)
    return doc


def _pointer(operation: dict[str, JSON], field: str, where: str) -> list[str]:
    text = operation.get(field)
    if not isinstance(text, str):
        raise PatchError(where, f"{operation['op']} needs a string `{field}`")
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(where, f"{field} {_show(text)} must be empty or start with /")
    return [token.replace("~1", "/").replace("~0", "~") for token in text[1:].split("/")]


def _index(token: str, length: int, *, insert: bool) -> int | None:
    """A list index from a pointer token, or None when invalid (negative counts from the end)."""
    if insert and token == "-":
        return length
    if not re.fullmatch(r"-?[0-9]+", token):
        return None
    index = int(token)
    limit = length + 1 if insert else length
    if index < 0:
        index += limit
    return index if 0 <= index < limit else None


def _container(doc: JSON, tokens: list[str], where: str, text: str) -> JSON:
    """The object or list holding the last token of a pointer."""
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and (index := _index(token, len(node), insert=False)) is not None:
            node = node[index]
        else:
            raise PatchError(where, f"path {_show(text)} does not exist")
    if not isinstance(node, dict | list):
        raise PatchError(where, f"path {_show(text)} does not exist")
    return node


def _op_text(operation: dict[str, JSON], field: str) -> str:
    return str(operation.get(field))


def _add_at(doc: JSON, tokens: list[str], value: JSON, where: str, text: str) -> JSON:
    if not tokens:
        return value
    node = _container(doc, tokens, where, text)
    last = tokens[-1]
    if isinstance(node, dict):
        node[last] = value
    else:
        index = _index(last, len(node), insert=True)
        if index is None:
            raise PatchError(where, f"index {_show(last)} is out of range in {_show(text)}")
        node.insert(index, value)
    return doc


def _take(doc: JSON, tokens: list[str], where: str, text: str, *, remove: bool) -> JSON:
    if not tokens:
        raise PatchError(where, "cannot take the whole document")
    node = _container(doc, tokens, where, text)
    last = tokens[-1]
    if isinstance(node, dict):
        if last not in node:
            raise PatchError(where, f"path {_show(text)} does not exist")
        return node.pop(last) if remove else node[last]
    index = _index(last, len(node), insert=False)
    if index is None:
        raise PatchError(where, f"index {_show(last)} is out of range in {_show(text)}")
    return node.pop(index) if remove else node[index]


def _op_add(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    tokens = _pointer(operation, "path", where)
    value = copy.deepcopy(operation.get("value"))
    return _add_at(doc, tokens, value, where, _op_text(operation, "path"))


def _op_remove(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    tokens = _pointer(operation, "path", where)
    _take(doc, tokens, where, _op_text(operation, "path"), remove=True)
    return doc


def _op_replace(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    tokens = _pointer(operation, "path", where)
    value = copy.deepcopy(operation.get("value"))
    if not tokens:
        return value
    text = _op_text(operation, "path")
    node = _container(doc, tokens, where, text)
    if isinstance(node, dict):
        node[tokens[-1]] = value  # evanphx: a missing member is simply added
        return doc
    index = _index(tokens[-1], len(node), insert=False)
    if index is None:
        raise PatchError(where, f"index {_show(tokens[-1])} is out of range in {_show(text)}")
    node[index] = value
    return doc


def _op_move(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    source = _pointer(operation, "from", where)
    target = _pointer(operation, "path", where)
    value = _take(doc, source, where, _op_text(operation, "from"), remove=True)
    # Moving a value into itself fails here: its old parent is gone once it is taken out.
    return _add_at(doc, target, value, where, _op_text(operation, "path"))


def _op_copy(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    source = _pointer(operation, "from", where)
    target = _pointer(operation, "path", where)
    value = copy.deepcopy(_take(doc, source, where, _op_text(operation, "from"), remove=False))
    return _add_at(doc, target, value, where, _op_text(operation, "path"))


def _op_test(doc: JSON, operation: dict[str, JSON], where: str) -> JSON:
    tokens = _pointer(operation, "path", where)
    text = _op_text(operation, "path")
    if not tokens:
        actual = doc
    else:
        node = _container(doc, tokens, where, text)
        # evanphx: a missing object member tests as null.
        actual = node.get(tokens[-1]) if isinstance(node, dict) else _take(doc, tokens, where, text, remove=False)
    if not _same(actual, operation.get("value")):
        expected = _show(operation.get("value"))
        raise PatchError(where, f"test failed: {_show(text)} is {_show(actual)}, not {expected}")
    return doc


def _same(left: JSON, right: JSON) -> bool:
    """JSON equality where 1, 1.0 and true are three different values."""
    if _kind(left) != _kind(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


_OPERATIONS: Final = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move,
    "copy": _op_copy,
    "test": _op_test,
}
