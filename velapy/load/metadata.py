"""The shape of an object's `metadata` → the problems that would break everything downstream.

Kubernetes reads `metadata` as an ObjectMeta: a mapping whose `labels` and `annotations` are maps
of strings to strings. velapy reads those fields at every stage (labels and annotations are
merged into every rendered object, hub objects are selected by name and labels, diffs and plans
index by name), so an object whose metadata has another shape — `metadata: "web"`,
`labels: "abc"`, `labels: [a, b]`, a label whose value is a mapping — is reported where it enters:
a user's object (`k8s-objects`, a merge-patch trait's properties, a `--resources` manifest) when
it is loaded and validated, a rendered one right after the template or trait that produced it.
Messages name the field and the shape it has, never its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAP_FIELDS = ("labels", "annotations")


def shape_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def metadata_problems(obj: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(path in `obj`, message) for each part of its metadata Kubernetes could not read as ObjectMeta."""
    meta = obj.get("metadata")
    if meta is None:
        return []
    if not isinstance(meta, Mapping):
        return [(("metadata",), f"metadata must be a mapping (name, namespace, labels, annotations), "
                                f"not {shape_of(meta)}")]
    out: list[tuple[tuple[str, ...], str]] = []
    for f in MAP_FIELDS:
        value = meta.get(f)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            out.append((("metadata", f), f"metadata.{f} must be a mapping of names to strings, not {shape_of(value)}"))
            continue
        for k, v in value.items():
            if isinstance(v, Mapping | list | tuple):
                out.append((("metadata", f, str(k)), f"metadata.{f}.{k} must be a string, not {shape_of(v)}"))
    return out


Path = tuple[str | int, ...]


def object_mappings(node: Any, path: Path = ()) -> list[tuple[Path, Mapping[str, Any]]]:
    """Every mapping under `node` that is a Kubernetes object (a string apiVersion and kind), with its path."""
    out: list[tuple[Path, Mapping[str, Any]]] = []
    stack: list[tuple[Path, Any]] = [(path, node)]
    while stack:
        at, n = stack.pop()
        if isinstance(n, Mapping):
            if isinstance(n.get("apiVersion"), str) and isinstance(n.get("kind"), str):
                out.append((at, n))
            stack.extend(((*at, k), v) for k, v in n.items() if isinstance(v, Mapping | list))
        elif isinstance(n, list):
            stack.extend(((*at, i), v) for i, v in enumerate(n) if isinstance(v, Mapping | list))
    return sorted(out, key=lambda pv: [str(p) for p in pv[0]])


__all__ = ["metadata_problems", "object_mappings", "shape_of"]
