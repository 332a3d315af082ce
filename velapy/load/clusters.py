"""Cluster inventory file (`--clusters FILE`) → an Inventory of named clusters.

The file holds a top-level `clusters:` list; each item has a `name` and optionally `labels`
(matched by topology `clusterLabelSelector`), `kubeconfig` + `context` (used only by the
executor), `version` (feeds `context.clusterVersion`) and a default `identity`. It is checked
against `schemas/clusters.schema.json`; every problem is reported at its file:line:col.

The hub `local` always exists, even when the file does not list it (KubeVela's control plane);
listing it gives it a kubeconfig, a version or an identity, but not labels: KubeVela keeps no
labels for the hub, so a label selector never selects it. A cluster without a version gets the
hub's, as KubeVela falls back to the control plane's version. Nothing here contacts a cluster.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from velapy.errors import Diagnostic, InputError, Location
from velapy.load.yamlio import Document, load_file
from velapy.resources import schemas_dir

HUB = "local"
SCHEMA_DIR = schemas_dir()


@dataclass(frozen=True)
class ClusterVersion:
    """A member cluster's Kubernetes version, as `context.clusterVersion` gives it to templates."""

    major: str = ""
    minor: int = 0
    git_version: str = ""
    platform: str = ""

    @staticmethod
    def parse(version: str) -> ClusterVersion:
        """`"1.28"` / `"v1.18+"` → major "1", minor 28 (trailing `.+-/?!` trimmed, as KubeVela)."""
        v = version.strip().lstrip("v")
        if not v:
            return ClusterVersion()
        parts = v.split(".")
        major = parts[0]
        minor_text = parts[1].rstrip(".+-/?!") if len(parts) > 1 else ""
        digits = ""
        for ch in minor_text:
            if not ch.isdigit():
                break
            digits += ch
        return ClusterVersion(major, int(digits) if digits else 0, "v" + v if v[0].isdigit() else v, "")

    def as_context(self) -> dict[str, Any]:
        return {"major": self.major, "minor": self.minor, "gitVersion": self.git_version, "platform": self.platform}


@dataclass(frozen=True)
class Identity:
    """Who the executor acts as in a cluster (Impersonate-User / Impersonate-Group)."""

    user: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    kubeconfig: str = ""
    context: str = ""
    version: str = ""  # as written ("" = unknown)
    identity: Identity | None = None
    location: Location = field(default_factory=Location)

    @property
    def is_hub(self) -> bool:
        return self.name == HUB


@dataclass(frozen=True)
class Inventory:
    """The clusters known to a run: the hub first, then the file's clusters in file order."""

    clusters: tuple[Cluster, ...] = (Cluster(HUB),)
    file: str = ""

    def get(self, name: str) -> Cluster | None:
        for c in self.clusters:
            if c.name == name:
                return c
        return None

    def names(self) -> list[str]:
        return [c.name for c in self.clusters]

    @property
    def hub(self) -> Cluster:
        hub = self.get(HUB)
        assert hub is not None  # the loader always adds it
        return hub

    def version_of(self, name: str) -> ClusterVersion:
        """`context.clusterVersion` for a cluster: its own version, else the hub's (else unknown)."""
        c = self.get(name)
        text = (c.version if c is not None else "") or self.hub.version
        return ClusterVersion.parse(text)

    def select(self, labels: Mapping[str, str]) -> list[Cluster]:
        """Member clusters whose labels hold every given key/value, by name (as an API server lists)."""
        hits = [c for c in self.clusters if not c.is_hub
                and all(c.labels.get(k) == v for k, v in labels.items())]
        return sorted(hits, key=lambda c: c.name)

    def suggest(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.6)
        if close:
            return f'did you mean "{close[0]}"?'
        where = f" in {self.file}" if self.file else " (no --clusters file given: only the hub exists)"
        return "known clusters" + where + ": " + ", ".join(self.names())


def hub_only() -> Inventory:
    """The inventory of a run without `--clusters`: the hub alone."""
    return Inventory()


@cache
def _schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return data


def load_inventory(path: str) -> Inventory:
    """Read and check a cluster inventory file; all problems at once (InputError)."""
    docs = load_file(path)
    if len(docs) != 1:
        raise InputError([Diagnostic(
            f"a cluster inventory file holds one YAML document, found {len(docs)}", Location(file=path, line=1),
            "write `clusters:` followed by a list of `- name: ...` items")])
    doc = docs[0]
    problems = schema_problems(doc, _schema("clusters.schema.json"))
    if problems:
        raise InputError(problems)
    clusters: list[Cluster] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc.data["clusters"]):
        name = str(item["name"])
        loc = doc.location(["clusters", i, "name"])
        if name in seen:
            first = doc.location(["clusters", seen[name], "name"])
            problems.append(Diagnostic(f"cluster {name} is listed twice (first at line {first.line})", loc))
            continue
        seen[name] = i
        if name == HUB and item.get("labels"):
            problems.append(Diagnostic(
                "the hub cluster local cannot have labels", doc.location(["clusters", i, "labels"]),
                "KubeVela keeps no labels for its control plane, so clusterLabelSelector never selects local; "
                "name it in `clusters: [local]` instead"))
            continue
        ident = item.get("identity")
        clusters.append(Cluster(
            name=name,
            labels=dict(item.get("labels") or {}),
            kubeconfig=str(item.get("kubeconfig") or ""),
            context=str(item.get("context") or ""),
            version=str(item.get("version") or ""),
            identity=Identity(str(ident.get("user") or ""), tuple(ident.get("groups") or ())) if ident else None,
            location=loc,
        ))
    if problems:
        raise InputError(problems)
    if HUB not in seen:
        clusters.insert(0, Cluster(HUB))
    else:
        clusters.sort(key=lambda c: not c.is_hub)  # stable: the hub first, the rest in file order
    return Inventory(tuple(clusters), path)


# ----------------------------------------------------------------------------------------------
# JSON Schema problems as located diagnostics


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _found(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{value!r}"


def schema_problems(doc: Document, schema: dict[str, Any]) -> list[Diagnostic]:
    """Every violation of `schema` in `doc`, located at the offending node, in document order."""
    import jsonschema  # here: its import costs ~0.25 s CPU, and most commands never check a schema

    validator = jsonschema.Draft202012Validator(schema)
    out: list[tuple[int, int, Diagnostic]] = []
    for err in validator.iter_errors(doc.data):
        path: list[str | int] = list(err.absolute_path)
        hint = ""
        v = err.validator
        if v == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "a field"
            message = f"missing required field {missing}"
        elif v == "additionalProperties" and isinstance(err.instance, dict):
            known = sorted((err.schema.get("properties") or {}) if isinstance(err.schema, dict) else {})
            extras = [k for k in err.instance if k not in known]
            if known and extras:
                for extra in extras:
                    close = difflib.get_close_matches(str(extra), known, n=1, cutoff=0.6)
                    d = Diagnostic(f"unknown field {extra}", doc.location([*path, str(extra)]),
                                   f'did you mean "{close[0]}"?' if close else "known fields: " + ", ".join(known))
                    out.append((d.location.line, d.location.column, d))
                continue
            message = "values here must be strings" if not known else err.message
            if not known:
                for k, val in err.instance.items():
                    if not isinstance(val, str):
                        d = Diagnostic(f"expected a string, found {_found(val)}", doc.location([*path, str(k)]),
                                       f'quote the value: {k}: "{val}"')
                        out.append((d.location.line, d.location.column, d))
                continue
        elif v == "type":
            want = err.validator_value
            wants = [want] if isinstance(want, str) else list(want)
            message = f"expected {' or '.join(_TYPE_NAMES.get(w, w) for w in wants)}, found {_found(err.instance)}"
            if "string" in wants and isinstance(err.instance, int | float | bool):
                hint = "quote it" + (": an unquoted 1.20 is the number 1.2" if isinstance(err.instance, float) else "")
        elif v == "pattern":
            message = f"invalid value {err.instance!r}"
            hint = str(err.schema.get("x-pattern-hint") or f"expected to match {err.validator_value}")
        elif v in ("minLength", "minProperties"):
            message = "must not be empty"
        else:
            message = err.message
        d = Diagnostic(message, doc.location(path), hint)
        out.append((d.location.line, d.location.column, d))
    out.sort(key=lambda t: (t[0], t[1]))
    return [d for _l, _c, d in out]


__all__ = ["HUB", "Cluster", "Identity", "Inventory", "hub_only", "load_inventory", "schema_problems"]
