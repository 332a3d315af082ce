"""Rendered objects → the names Kubernetes would reject, as located errors, before anything is written.

Kubernetes' own limits (apimachinery validation), checked on every object of a plan:

- `metadata.namespace` and a Namespace's name: a DNS-1123 label, at most 63 characters;
- `metadata.name`: a DNS-1123 subdomain of at most 253 characters for most kinds; a DNS-1035
  label of at most 63 for a Service; RBAC kinds only forbid `/`, `%`, `.` and `..`;
- label keys (optional DNS subdomain prefix of at most 253, `/`, a name of at most 63) and label
  values (at most 63, alphanumerics with `-`, `_`, `.` inside).

Each problem is located at the component (or trait) that produced the object in the app file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from velapy.compile.plan import Plan, PlannedObject
from velapy.errors import Diagnostic, Location

LABEL_MAX = 63
SUBDOMAIN_MAX = 253
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_QUALIFIED = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_RBAC = {("rbac.authorization.k8s.io", k) for k in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")}


def _short(text: str) -> str:
    return text if len(text) <= 70 else text[:40] + "…" + text[-20:]


def _problem(text: str, limit: int, pattern: re.Pattern[str], shape: str) -> str:
    """Why `text` breaks its length `limit` or its `pattern` ("" when it keeps both)."""
    if len(text) > limit:
        return f"is {len(text)} characters long; Kubernetes allows {limit}"
    return "" if pattern.fullmatch(text) else shape


@functools.lru_cache(maxsize=8192)  # the same names recur on every cluster
def label_problem(text: str) -> str:
    """Why `text` is not a DNS-1123 label ("" when it is one)."""
    return _problem(text, LABEL_MAX, _LABEL,
                    "must be lowercase letters, digits and '-', starting and ending with a letter or digit")


@functools.lru_cache(maxsize=8192)  # the same names recur on every cluster
def subdomain_problem(text: str) -> str:
    """Why `text` is not a DNS-1123 subdomain ("" when it is one)."""
    return _problem(text, SUBDOMAIN_MAX, _SUBDOMAIN,
                    "must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit")


@functools.lru_cache(maxsize=8192)  # the same names recur on every cluster
def name_problem(group: str, kind: str, name: str) -> str:
    """Why `name` cannot name an object of this kind ("" when it can)."""
    if (group, kind) in _RBAC:
        if not name or name in (".", "..") or "/" in name or "%" in name:
            return "may not be empty, '.' or '..', nor contain '/' or '%'"
        return ""
    if group == "" and kind == "Namespace":
        return label_problem(name)
    if group == "" and kind == "Service":
        if len(name) > LABEL_MAX:
            return f"is {len(name)} characters long; Kubernetes allows {LABEL_MAX} for a Service"
        if not _DNS1035.fullmatch(name):
            return "must be lowercase letters, digits and '-', starting with a letter (a Service name)"
        return ""
    return subdomain_problem(name)


@functools.lru_cache(maxsize=8192)  # the same names recur on every cluster
def label_key_problem(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if prefix and subdomain_problem(prefix):
        return f"has the prefix {_short(prefix)!r}, which {subdomain_problem(prefix)}"
    if len(name) > LABEL_MAX:
        return f"has a name part of {len(name)} characters; Kubernetes allows {LABEL_MAX}"
    if not _QUALIFIED.fullmatch(name):
        return "must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
    return ""


@functools.lru_cache(maxsize=8192)  # the same names recur on every cluster
def label_value_problem(value: str) -> str:
    return _problem(value, LABEL_MAX, _LABEL_VALUE,
                    "must be empty or alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric")


def object_problems(o: PlannedObject) -> list[tuple[str, str]]:
    """(field path, message) for every name of the object Kubernetes would reject."""
    out: list[tuple[str, str]] = []
    what = f"{o.kind} {_short(o.name)!r}"
    for field in ("apiVersion", "kind"):
        value = o.obj.get(field)
        if not isinstance(value, str) or not value:
            out.append((field, f"the {field} of {what} must be a non-empty string, not {value!r}"))
    meta_name = o.obj.get("metadata", {}).get("name") if isinstance(o.obj.get("metadata"), dict) else None
    if not isinstance(meta_name, str):
        out.append(("metadata.name", f"the name of {what} must be a string, not {meta_name!r}"))
    if o.namespace and (why := label_problem(o.namespace)):
        out.append(("metadata.namespace", f"the namespace {_short(o.namespace)!r} of {what} {why}"))
    if why := name_problem(o.key.group, o.kind, o.name):
        out.append(("metadata.name", f"the name of {what} {why}"))
    meta: Any = o.obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if isinstance(labels, dict):
        for k, v in labels.items():
            if why := label_key_problem(str(k)):
                out.append((f"metadata.labels[{k!r}]", f"the label key {_short(str(k))!r} of {what} {why}"))
            if isinstance(v, str) and (why := label_value_problem(v)):
                out.append((f"metadata.labels[{k!r}]", f"the value of label {k} on {what} {why}"))
    return out


def check_plan(plan: Plan, locate: Callable[[str, str], Location]) -> list[Diagnostic]:
    """Every invalid name of every object of `plan`; `locate(component, trait)` says where the
    component (or its trait) is written. One diagnostic per problem, however many clusters."""
    return check_objects((o for objs in plan.bundles().values() for o in objs), locate)


def check_objects(objects: Iterable[PlannedObject], locate: Callable[[str, str], Location]) -> list[Diagnostic]:
    """`check_plan` for any rendered objects (the `vela dry-run` stream's too): one diagnostic per
    problem of a component or trait."""
    seen: dict[tuple[str, str, str], Diagnostic] = {}
    for o in objects:
        for path, message in object_problems(o):
            key = (o.component, o.trait, message)
            if key not in seen:
                loc = locate(o.component, o.trait)
                seen[key] = Diagnostic(f"{message} ({path} of the rendered object)", loc,
                                       "Kubernetes would reject this object: shorten or fix the name")
    return list(seen.values())


__all__ = ["check_objects", "check_plan", "label_problem", "label_value_problem", "name_problem", "object_problems",
           "subdomain_problem"]
