"""Object trees → field paths, field sets, `fieldsV1` documents, merges, patches and selectors.

Server-side apply tracks ownership at leaf level. A field path is a tuple of path elements in the
API server's `fieldsV1` spelling: `f:name` for a map key and `k:{"name":"web"}` for an item of a
list merged by key (containers, ports, env, volumes, ...). Other lists are atomic: the list is a
leaf. Which lists are keyed follows the built-in schemas for the names velapy meets; custom
resources have no schema here, so all their lists are atomic (as for a CRD without
`x-kubernetes-list-type` markers).

Also here, as pure functions over plain dicts: the apply merge, JSON merge patch (RFC 7386),
JSON patch (RFC 6902), an approximation of strategic merge patch, and label/field selectors.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Path = tuple[str, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class PatchError(ValueError):
    """A patch that cannot be applied (the server answers 400/422 with this message)."""


# Server-owned or identity fields that never enter a field set.
_IGNORED_META = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                 "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName"}
_IGNORED_TOP = {"apiVersion", "kind"}

# list field name → merge key fields (server-side apply keys; built-in kinds only)
_KEYED: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
    "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",), "volumeDevices": ("devicePath",),
    "imagePullSecrets": ("name",), "hostAliases": ("ip",), "ownerReferences": ("uid",),
    "conditions": ("type",), "resourceClaims": ("name",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_DEFAULTS = {"protocol": "TCP"}


@dataclass(frozen=True)
class Schema:
    """What the merge code needs to know about the object's type."""

    structured: bool = True  # a built-in kind (keyed lists known); False for custom resources
    kind: str = ""


def list_key(name: str, items: list[Any], schema: Schema) -> tuple[str, ...] | None:
    """The merge key of list field `name`, or None when the list is atomic."""
    if not schema.structured or not items or not all(isinstance(i, dict) for i in items):
        return None
    keys: tuple[str, ...] | None = _KEYED.get(name)
    if name == "ports":
        if all("containerPort" in i for i in items):
            keys = ("containerPort", "protocol")
        elif schema.kind == "Service" and all("port" in i for i in items):
            keys = ("port", "protocol")
    if keys is None:
        return None
    if not all(k in i or k in _DEFAULTS for i in items for k in keys):
        return None
    seen = set()
    for i in items:
        ident = item_key(i, keys)
        if ident in seen:
            return None  # duplicate keys: treat the list as atomic rather than lose items
        seen.add(ident)
    return keys


def item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    """`k:{...}` element for a keyed list item (keys sorted, compact JSON, as the API server writes)."""
    ident = {k: item.get(k, _DEFAULTS.get(k)) for k in keys}
    return "k:" + json.dumps(ident, sort_keys=True, separators=(",", ":"))


def _item_matches(item: Any, elem: str) -> bool:
    if not isinstance(item, dict):
        return False
    want = json.loads(elem[2:])
    return all(item.get(k, _DEFAULTS.get(k)) == v for k, v in want.items())


# ----------------------------------------------------------------------------------------------
# field sets


def field_set(obj: dict[str, Any], schema: Schema, *, top: bool = True) -> set[Path]:
    """Every owned path of `obj`: leaves, atomic lists, empty maps and keyed list items."""
    out: set[Path] = set()
    _walk(obj, (), schema, out, top)
    return out


def _walk(node: dict[str, Any], prefix: Path, schema: Schema, out: set[Path], top: bool) -> None:
    for key, value in node.items():
        if top and not prefix and key in _IGNORED_TOP:
            continue
        if top and prefix == ("f:metadata",) and key in _IGNORED_META:
            continue
        if value is None:
            continue
        path = (*prefix, "f:" + key)
        if isinstance(value, dict):
            if top and not prefix and key == "metadata":
                _walk(value, path, schema, out, True)
            elif value:
                _walk(value, path, schema, out, False)
            else:
                out.add(path)
        elif isinstance(value, list):
            keys = list_key(key, value, schema)
            if keys is None:
                out.add(path)
                continue
            for item in value:
                ipath = (*path, item_key(item, keys))
                out.add(ipath)
                _walk(item, ipath, schema, out, False)
        else:
            out.add(path)


def is_leaf(path: Path) -> bool:
    """A field, not a keyed list item (conflicts are about values, which only fields hold)."""
    return not path[-1].startswith("k:")


def resolve(obj: Any, path: Path) -> Any:
    """The value at `path`, or MISSING."""
    cur = obj
    for elem in path:
        if elem.startswith("f:"):
            if not isinstance(cur, dict) or elem[2:] not in cur:
                return MISSING
            cur = cur[elem[2:]]
        else:
            if not isinstance(cur, list):
                return MISSING
            for item in cur:
                if _item_matches(item, elem):
                    cur = item
                    break
            else:
                return MISSING
    return cur


def remove(obj: dict[str, Any], path: Path, keep: set[Path]) -> None:
    """Delete the field or list item at `path`, then empty parents no one keeps (never `metadata`)."""
    chain: list[tuple[Any, str]] = []
    cur: Any = obj
    for elem in path:
        chain.append((cur, elem))
        nxt = resolve(cur, (elem,))
        if nxt is MISSING:
            return
        cur = nxt
    for depth in range(len(chain) - 1, -1, -1):
        parent, elem = chain[depth]
        if elem.startswith("f:"):
            parent.pop(elem[2:], None)
        else:
            parent[:] = [i for i in parent if not _item_matches(i, elem)]
        if depth == 0:
            return
        here = path[:depth]
        if parent or here in keep or here == ("f:metadata",) or any(p[:depth] == here for p in keep):
            return


def path_text(path: Path) -> str:
    """`.spec.template.spec.containers[name="web"].image`, as the API server prints a path."""
    out = ""
    for elem in path:
        if elem.startswith("f:"):
            out += "." + elem[2:]
        else:
            ident = json.loads(elem[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(ident.items())) + "]"
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for elem in path:
            node = node.setdefault(elem, {})
        node["."] = {}

    def finish(node: dict[str, Any]) -> dict[str, Any]:
        children = {k: finish(v) for k, v in sorted(node.items()) if k != "."}
        if not children:
            return {}
        if "." in node:
            return {".": {}, **children}
        return children

    return finish(tree)


def from_fields_v1(doc: Any) -> set[Path]:
    out: set[Path] = set()

    def walk(node: Any, prefix: Path) -> None:
        if not isinstance(node, dict):
            return
        if prefix and (not node or "." in node):
            out.add(prefix)
        for k, v in node.items():
            if k != ".":
                walk(v, (*prefix, k))

    walk(doc, ())
    return out


def covers(owned: set[Path], path: Path) -> bool:
    """Whether a manager owning `owned` holds `path` or anything below it."""
    n = len(path)
    return any(p[:n] == path for p in owned)


# ----------------------------------------------------------------------------------------------
# merges and patches


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def apply_merge(live: Any, applied: Any, schema: Schema, name: str = "") -> Any:
    """Server-side apply's merge of an applied configuration into the live object (a new tree)."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = copy.deepcopy(live)
        for k, v in applied.items():
            out[k] = apply_merge(live.get(k, MISSING), v, schema, k)
        return out
    if isinstance(live, list) and isinstance(applied, list):
        keys = list_key(name, applied, schema)
        if keys is not None and list_key(name, live, schema) == keys:
            merged = copy.deepcopy(live)
            for item in applied:
                elem = item_key(item, keys)
                for i, old in enumerate(merged):
                    if _item_matches(old, elem):
                        merged[i] = apply_merge(old, item, schema)
                        break
                else:
                    merged.append(copy.deepcopy(item))
            return merged
    return copy.deepcopy(applied)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _pointer(ptr: str) -> list[str]:
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise PatchError(f"invalid JSON pointer {ptr!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in ptr[1:].split("/")]


def _container(doc: Any, parts: list[str], ptr: str) -> Any:
    cur = doc
    for p in parts:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and p.isdigit() and int(p) < len(cur):
            cur = cur[int(p)]
        else:
            raise PatchError(f"doc is missing path: {ptr}")
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch is a list of operations")
    out = copy.deepcopy(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        kind, ptr = op["op"], str(op["path"])
        parts = _pointer(ptr)
        if kind in ("move", "copy"):
            src = _pointer(str(op.get("from", "")))
            value = copy.deepcopy(_container(out, src, str(op.get("from"))))
            if kind == "move":
                out = _remove(out, src, str(op.get("from")))
            out = _add(out, parts, value, ptr)
        elif kind == "add":
            out = _add(out, parts, copy.deepcopy(op.get("value")), ptr)
        elif kind == "remove":
            out = _remove(out, parts, ptr)
        elif kind == "replace":
            _container(out, parts, ptr)
            out = _remove(out, parts, ptr)
            out = _add(out, parts, copy.deepcopy(op.get("value")), ptr)
        elif kind == "test":
            if _container(out, parts, ptr) != op.get("value"):
                raise PatchError(f"testing value {ptr} failed")
        else:
            raise PatchError(f"unexpected kind of JSON patch operation {kind!r}")
    return out


def _add(doc: Any, parts: list[str], value: Any, ptr: str) -> Any:
    if not parts:
        return value
    parent = _container(doc, parts[:-1], ptr)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"add operation does not apply: doc is missing path: {ptr}")
    else:
        raise PatchError(f"doc is missing path: {ptr}")
    return doc


def _remove(doc: Any, parts: list[str], ptr: str) -> Any:
    if not parts:
        return None
    parent = _container(doc, parts[:-1], ptr)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(f"remove operation does not apply: doc is missing path: {ptr}")
    return doc


# strategic merge patch: list name → patch merge key (the `patchMergeKey` of the built-in types)
_SMP_KEYS = {"containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
             "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name", "conditions": "type",
             "hostAliases": "ip", "ownerReferences": "uid", "volumeDevices": "devicePath"}
_SMP_MERGE_PRIMITIVES = {"finalizers"}


def strategic_merge(target: Any, patch: Any, schema: Schema, name: str = "") -> Any:
    """An approximation of strategic merge patch for built-in kinds.

    Maps merge recursively and `null` deletes; lists with a known patch merge key (containers,
    env, volumes, ports by containerPort or port, ...) merge item by item, honouring
    `$patch: delete|replace|merge`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`;
    `$retainKeys` keeps only the listed keys; other lists are replaced. Custom resources get a
    JSON merge patch, as the real server does.
    """
    if not schema.structured:
        return merge_patch(target, patch)
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return {k: v for k, v in copy.deepcopy(patch).items() if k != "$patch"}
        if directive == "delete":
            return MISSING
        out = copy.deepcopy(target) if isinstance(target, dict) else {}
        retain = patch.get("$retainKeys")
        orders: dict[str, list[Any]] = {}
        for k, v in patch.items():
            if k in ("$patch", "$retainKeys"):
                continue
            if k.startswith("$setElementOrder/"):
                orders[k.split("/", 1)[1]] = v if isinstance(v, list) else []
                continue
            if k.startswith("$deleteFromPrimitiveList/"):
                field = k.split("/", 1)[1]
                if isinstance(out.get(field), list) and isinstance(v, list):
                    out[field] = [x for x in out[field] if x not in v]
                continue
            if v is None:
                out.pop(k, None)
                continue
            merged = strategic_merge(out.get(k), v, schema, k)
            if merged is MISSING:
                out.pop(k, None)
            else:
                out[k] = merged
        for field, order in orders.items():
            if isinstance(out.get(field), list):
                out[field] = _reorder(out[field], order, _smp_key(field, out[field], schema))
        if isinstance(retain, list):
            out = {k: v for k, v in out.items() if k in retain}
        return out
    if isinstance(patch, list):
        if name in _SMP_MERGE_PRIMITIVES and isinstance(target, list):
            return list(target) + [x for x in patch if x not in target]
        key = _smp_key(name, patch, schema)
        if key is None or not isinstance(target, list):
            return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and x.get("$patch") == "delete")]
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in copy.deepcopy(patch) if not (isinstance(x, dict) and "$patch" in x)]
        out_list = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
            idx = next((i for i, old in enumerate(out_list)
                        if isinstance(old, dict) and old.get(key) == item[key]), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    del out_list[idx]
                continue
            if idx is None:
                out_list.append(strategic_merge({}, item, schema))
            else:
                out_list[idx] = strategic_merge(out_list[idx], item, schema)
        return out_list
    return copy.deepcopy(patch)


def _smp_key(name: str, items: list[Any], schema: Schema) -> str | None:
    if name == "ports":
        if any(isinstance(i, dict) and "containerPort" in i for i in items):
            return "containerPort"
        return "port" if schema.kind == "Service" else None
    return _SMP_KEYS.get(name)


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(x: Any) -> Any:
        return json.dumps(x.get(key) if key and isinstance(x, dict) else x, sort_keys=True)

    wanted = [ident(o) for o in order]
    ranked = sorted(range(len(items)), key=lambda i: (wanted.index(ident(items[i])) if ident(items[i]) in wanted
                                                      else len(wanted) + i))
    return [items[i] for i in ranked]


# ----------------------------------------------------------------------------------------------
# selectors


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, Any]) -> bool:
        has = self.key in labels
        value = str(labels.get(self.key, ""))
        if self.op == "=":
            return has and value == self.values[0]
        if self.op == "!=":
            return not has or value != self.values[0]
        if self.op == "in":
            return has and value in self.values
        if self.op == "notin":
            return not has or value not in self.values
        if self.op == "exists":
            return has
        return not has


_REQ = re.compile(r"^\s*(?:(!)\s*([\w./-]+)|([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*)|\s(in|notin)\s*\(([^)]*)\))?)\s*$")


def parse_label_selector(text: str) -> list[Requirement]:
    parts: list[str] = []
    depth, cur = 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    reqs = []
    for part in parts:
        if not part.strip():
            continue
        m = _REQ.match(part)
        if not m:
            raise SelectorError(f"unable to parse requirement: {part.strip()!r}")
        if m.group(1):
            reqs.append(Requirement(m.group(2), "!exists"))
        elif m.group(4):
            reqs.append(Requirement(m.group(3), "!=" if m.group(4) == "!=" else "=", (m.group(5),)))
        elif m.group(6):
            values = tuple(v.strip() for v in m.group(7).split(",") if v.strip())
            reqs.append(Requirement(m.group(3), m.group(6), values))
        else:
            reqs.append(Requirement(m.group(3), "exists"))
    return reqs


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    out = []
    for part in text.split(","):
        if not part.strip():
            continue
        m = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: {part.strip()!r}; can't understand")
        out.append((m.group(1), "!=" if m.group(2) == "!=" else "=", m.group(3)))
    return out


def field_matches(obj: dict[str, Any], terms: list[tuple[str, str, str]]) -> bool:
    for path, op, want in terms:
        cur: Any = obj
        for p in path.split("."):
            cur = cur.get(p) if isinstance(cur, dict) else None
        have = "" if cur is None else str(cur)
        if (have == want) != (op == "="):
            return False
    return True
