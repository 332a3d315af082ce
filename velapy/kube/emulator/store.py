"""One emulated cluster's objects and the API server's write semantics → stored objects or ApiError.

`Store` holds the objects of one cluster (keyed by group, plural, namespace, name), a global
resourceVersion counter, and the kinds registered by CRDs. Its methods are the verbs of the API
(get, list, create, update, patch, apply, delete) with the real server's rules: server-set
metadata, generation bumps only on changes outside metadata/status, optimistic concurrency,
namespaces that must exist, server-side apply with field ownership (see fields.py), status
subresources, finalizers, owner-reference garbage collection, dry runs. It also plays the
controllers (rollouts finish `ready_after` seconds after a spec change, Jobs complete, PVCs bind,
Services get a clusterIP). Errors are `ApiError`s carrying the `Status` body the server sends.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import random
import re
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from velapy.kube.emulator.fields import (
    PatchError,
    Schema,
    SelectorError,
    apply_merge,
    covers,
    drop_nulls,
    field_matches,
    field_set,
    from_fields_v1,
    is_leaf,
    json_patch,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    path_text,
    remove,
    resolve,
    strategic_merge,
    to_fields_v1,
)
from velapy.kube.emulator.kinds import ResourceType, TypeRegistry

Key = tuple[str, str, str, str]  # group, plural, namespace ("" = cluster scope), name
BUILTIN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"

_WORKLOADS = {("apps", "deployments"), ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
              ("batch", "jobs"), ("", "persistentvolumeclaims")}
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
           406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
           429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}


class ApiError(Exception):
    """An API failure, rendered as a `Status` body."""

    def __init__(self, code: int, message: str, reason: str = "", details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": self.message, "reason": self.reason}
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def not_found(t: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{t.plural}{"." + t.group if t.group else ""} "{name}" not found', "NotFound",
                    {"name": name, "group": t.group, "kind": t.plural})


def _gr(t: ResourceType) -> str:
    return f"{t.plural}.{t.group}" if t.group else t.plural


def now_text(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts if ts is not None else time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    """One managedFields entry with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    time: str
    paths: set[tuple[str, ...]]
    subresource: str = ""

    def doc(self) -> dict[str, Any]:
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                               "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(self.paths)}
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def label(self) -> str:
        """How the API server names this manager in a conflict message."""
        out = json.dumps(self.manager)
        if self.subresource:
            out += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            out += f" using {self.api_version}" + (f" at {self.time}" if self.time else "")
        return out


def _entries(obj: dict[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    out = []
    for e in obj.get("metadata", {}).get("managedFields") or []:
        out.append(Entry(str(e.get("manager", "")), str(e.get("operation", "")), str(e.get("apiVersion", "")),
                         str(e.get("time", "")), from_fields_v1(e.get("fieldsV1") or {}),
                         str(e.get("subresource", ""))))
    return out


def _find(entries: list[Entry], manager: str, operation: str, sub: str) -> Entry | None:
    for e in entries:
        if e.manager == manager and e.operation == operation and e.subresource == sub:
            return e
    return None


@dataclass
class Store:
    """The objects of one emulated cluster; every public method takes the lock."""

    ready_after: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    types: TypeRegistry = field(default_factory=TypeRegistry)
    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    rv: int = 0
    pending: dict[Key, float] = field(default_factory=dict)  # controller due times
    held: set[Key] = field(default_factory=set)
    clock: Callable[[], float] = time.time
    # workloads whose pod template runs an image matching one of these globs never finish their
    # rollout (as with an image that cannot be pulled), until a change of image releases them
    held_images: tuple[str, ...] = ()
    image_held: set[Key] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.types = TypeRegistry()
            self.objects.clear()
            self.pending.clear()
            self.held.clear()
            self.image_held.clear()
            ns = self.types.by_kind("v1", "Namespace")
            assert ns is not None
            for name in BUILTIN_NAMESPACES:
                self.create(ns, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                            "kube-apiserver")

    # ------------------------------------------------------------------------------------------
    # reads

    def schema(self, t: ResourceType) -> Schema:
        return Schema(structured=not t.crd, kind=t.kind)

    def key(self, t: ResourceType, ns: str, name: str) -> Key:
        return (t.group, t.plural, ns if t.namespaced else "", name)

    def serve(self, t: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = t.api_version
        out["kind"] = t.kind
        return out

    def get(self, t: ResourceType, ns: str, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.get(self.key(t, ns, name))
            if obj is None:
                raise not_found(t, name)
            return self.serve(t, obj)

    def list_objects(self, t: ResourceType, ns: str, label_selector: str = "", field_selector: str = ""
                     ) -> dict[str, Any]:
        try:
            reqs = parse_label_selector(label_selector)
            terms = parse_field_selector(field_selector)
        except SelectorError as e:
            raise ApiError(400, str(e)) from None
        with self.lock:
            items = []
            for (g, p, ons, _), obj in sorted(self.objects.items()):
                if (g, p) != t.storage_key or (ns and ons != ns):
                    continue
                labels = obj.get("metadata", {}).get("labels") or {}
                if all(r.matches(labels) for r in reqs) and field_matches(obj, terms):
                    item = self.serve(t, obj)
                    if not t.crd:  # built-in list items carry no apiVersion/kind on a real server
                        del item["apiVersion"], item["kind"]
                    items.append(item)
            return {"kind": t.kind + "List", "apiVersion": t.api_version,
                    "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def namespace_exists(self, ns: str) -> bool:
        return ("", "namespaces", "", ns) in self.objects

    def _need_namespace(self, t: ResourceType, ns: str) -> None:
        if t.namespaced and not self.namespace_exists(ns):
            raise ApiError(404, f'namespaces "{ns}" not found', "NotFound", {"name": ns, "kind": "namespaces"})

    # ------------------------------------------------------------------------------------------
    # checks shared by the writes

    def _check_identity(self, t: ResourceType, ns: str, name: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request was in an unknown format - accepted media types include: "
                           "application/json, application/yaml")
        av, kind = body.get("apiVersion"), body.get("kind")
        if av is not None and av != t.api_version:
            raise ApiError(400, f"the API version in the data ({av}) does not match the expected API version "
                           f"({t.api_version})")
        if kind is not None and kind != t.kind:
            raise ApiError(400, f"the kind in the data ({kind}) does not match the expected kind ({t.kind})")
        meta = body.get("metadata")
        if meta is None:
            meta = body["metadata"] = {}
        if not isinstance(meta, dict):
            raise ApiError(400, "metadata must be a mapping")
        bname = meta.get("name")
        if name and bname and bname != name:
            raise ApiError(400, f"the name of the object ({bname}) does not match the name on the URL ({name})")
        bns = meta.get("namespace")
        if t.namespaced and bns and bns != ns:
            raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the "
                           "request")
        if not t.namespaced:
            meta.pop("namespace", None)
        return body

    def _validate(self, t: ResourceType, obj: dict[str, Any]) -> None:
        name = str(obj["metadata"].get("name", ""))
        causes = []
        pattern = _LABEL if t.plural in ("namespaces", "services") else _SUBDOMAIN
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif len(name) > 253 or not pattern.match(name):
            what = "RFC 1123 label" if pattern is _LABEL else "RFC 1123 subdomain"
            causes.append(("metadata.name", f'Invalid value: "{name}": a lowercase {what} must consist of lower '
                           "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                           "character"))
        for section in ("labels", "annotations"):
            value = obj["metadata"].get(section)
            if value is not None and (not isinstance(value, dict)
                                      or not all(isinstance(v, str) for v in value.values())):
                causes.append((f"metadata.{section}", "Invalid value: values must be strings"))
        if t.kind == "Secret":
            for k, v in (obj.get("data") or {}).items():
                try:
                    base64.b64decode(str(v), validate=True)
                except ValueError:
                    causes.append((f"data[{k}]", "Invalid value: <redacted>: not base64 data"))
        if causes:
            message = f'{t.kind} "{name}" is invalid: ' + ", ".join(f"{f}: {m}" for f, m in causes)
            raise ApiError(422, message, "Invalid", {"name": name, "group": t.group, "kind": t.kind,
                                                      "causes": [{"reason": "FieldValueInvalid", "message": m,
                                                                  "field": f} for f, m in causes]})

    def _view(self, t: ResourceType, obj: dict[str, Any], sub: str) -> dict[str, Any]:
        """The part of an object a write through the main resource or `status` may own."""
        if sub == "status":
            return {"status": obj["status"]} if "status" in obj else {}
        if t.status:
            return {k: v for k, v in obj.items() if k != "status"}
        return obj

    # ------------------------------------------------------------------------------------------
    # writes

    def create(self, t: ResourceType, ns: str, body: Any, manager: str, dry_run: bool = False) -> dict[str, Any]:
        with self.lock:
            obj = self._check_identity(t, ns, "", copy.deepcopy(body))
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = str(meta["generateName"]) + "".join(
                    random.choices(string.ascii_lowercase + string.digits, k=5))
            if t.namespaced:
                meta["namespace"] = ns
            obj["apiVersion"], obj["kind"] = t.api_version, t.kind
            for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                      "deletionTimestamp", "selfLink"):
                meta.pop(k, None)
            if t.status:
                obj.pop("status", None)
            self._validate(t, obj)
            key = self.key(t, ns, str(meta["name"]))
            if key in self.objects:
                raise ApiError(409, f'{_gr(t)} "{meta["name"]}" already exists', "AlreadyExists",
                               {"name": meta["name"], "group": t.group, "kind": t.plural})
            self._need_namespace(t, ns)
            self._secret_data(t, obj)
            entries: list[Entry] = []
            self._own_update(t, entries, None, obj, manager, "")
            return self._commit(t, key, None, obj, entries, dry_run)

    def update(self, t: ResourceType, ns: str, name: str, body: Any, manager: str, dry_run: bool = False,
               sub: str = "") -> dict[str, Any]:
        with self.lock:
            obj = self._check_identity(t, ns, name, copy.deepcopy(body))
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            if live is None:
                raise not_found(t, name)
            rv = obj["metadata"].get("resourceVersion")
            if not rv:
                raise ApiError(422, f'{t.kind} "{name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
                               "must be specified for an update", "Invalid",
                               {"name": name, "group": t.group, "kind": t.kind,
                                "causes": [{"reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                                            "message": "Invalid value: 0x0: must be specified for an update"}]})
            return self._replace(t, key, live, obj, manager, dry_run, sub)

    def _replace(self, t: ResourceType, key: Key, live: dict[str, Any], obj: dict[str, Any], manager: str,
                 dry_run: bool, sub: str) -> dict[str, Any]:
        """Write `obj` over `live` as an Update by `manager` (PUT and the non-apply patches)."""
        rv = obj["metadata"].get("resourceVersion")
        if rv and str(rv) != live["metadata"]["resourceVersion"]:
            raise self._modified(t, key[3])
        obj["apiVersion"], obj["kind"] = t.api_version, t.kind
        meta = obj["metadata"]
        meta["name"] = key[3]
        if t.namespaced:
            meta["namespace"] = key[2]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            if k in live["metadata"]:
                meta[k] = live["metadata"][k]
            else:
                meta.pop(k, None)
        meta.pop("managedFields", None)
        if sub == "status":
            new = copy.deepcopy(live)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            obj = new
        elif t.status:
            if "status" in live:
                obj["status"] = copy.deepcopy(live["status"])
            else:
                obj.pop("status", None)
        self._validate(t, obj)
        self._secret_data(t, obj)
        entries = _entries(live)
        self._own_update(t, entries, live, obj, manager, sub)
        return self._commit(t, key, live, obj, entries, dry_run)

    def _modified(self, t: ResourceType, name: str) -> ApiError:
        return ApiError(409, f'Operation cannot be fulfilled on {_gr(t)} "{name}": the object has been modified; '
                        "please apply your changes to the latest version and try again", "Conflict",
                        {"name": name, "group": t.group, "kind": t.plural})

    def patch(self, t: ResourceType, ns: str, name: str, body: Any, content_type: str, manager: str, *,
              force: bool = False, dry_run: bool = False, sub: str = "") -> tuple[dict[str, Any], int]:
        if content_type == APPLY:
            return self.apply(t, ns, name, body, manager, force=force, dry_run=dry_run, sub=sub)
        with self.lock:
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            if live is None:
                raise not_found(t, name)
            current = self.serve(t, live)
            try:
                if content_type == MERGE:
                    if not isinstance(body, dict):
                        raise PatchError("a merge patch is a JSON object")
                    new = merge_patch(current, body)
                elif content_type == JSON_PATCH:
                    new = json_patch(current, body)
                elif content_type == STRATEGIC:
                    if not isinstance(body, dict):
                        raise PatchError("a strategic merge patch is a JSON object")
                    new = strategic_merge(current, body, self.schema(t))
                    if not isinstance(new, dict):
                        raise PatchError("the patch removed the whole object")
                else:
                    raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                                   f"include: {JSON_PATCH}, {MERGE}, {APPLY}, {STRATEGIC}", "UnsupportedMediaType")
            except PatchError as e:
                raise ApiError(422 if content_type == JSON_PATCH else 400, str(e)) from None
            new = self._check_identity(t, ns, name, new)
            new["metadata"].setdefault("name", name)
            if new["metadata"].get("resourceVersion") == live["metadata"]["resourceVersion"]:
                new["metadata"].pop("resourceVersion")
            return self._replace(t, key, live, new, manager, dry_run, sub), 200

    def apply(self, t: ResourceType, ns: str, name: str, body: Any, manager: str, *, force: bool = False,
              dry_run: bool = False, sub: str = "") -> tuple[dict[str, Any], int]:
        """Server-side apply (PATCH application/apply-patch+yaml)."""
        if not manager:
            raise ApiError(400, "PATCH, application/apply-patch+yaml requires fieldManager to be set", "BadRequest")
        with self.lock:
            applied = self._check_identity(t, ns, name, drop_nulls(copy.deepcopy(body)))
            if not body.get("apiVersion") or not body.get("kind"):
                raise ApiError(400, "apiVersion and kind must be set in an apply configuration")
            meta = applied["metadata"]
            meta.pop("managedFields", None)
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            rv = meta.pop("resourceVersion", None)
            if rv and (live is None or str(rv) != live["metadata"]["resourceVersion"]):
                raise self._modified(t, name)
            for k in ("uid", "creationTimestamp", "generation", "selfLink", "deletionTimestamp"):
                meta.pop(k, None)
            schema = self.schema(t)
            view = self._view(t, applied, sub)
            if live is None:
                if sub:
                    raise not_found(t, name)
                self._need_namespace(t, ns)
                base: dict[str, Any] = {"apiVersion": t.api_version, "kind": t.kind,
                                        "metadata": {"name": name, **({"namespace": ns} if t.namespaced else {})}}
            else:
                base = copy.deepcopy(live)
                base.pop("apiVersion", None)
                base.pop("kind", None)
            new_set = field_set(view, schema)
            entries = _entries(live)
            mine = _find(entries, manager, "Apply", sub)
            merged = apply_merge(base, view, schema)
            merged["apiVersion"], merged["kind"] = t.api_version, t.kind
            conflicts: list[tuple[Entry, tuple[str, ...]]] = []
            for e in entries:
                if e is mine or e.subresource != sub:  # the same name's Update entry is another manager
                    continue
                for p in sorted(e.paths & new_set):
                    if is_leaf(p) and resolve(merged, p) != resolve(base, p):
                        conflicts.append((e, p))
            if conflicts and not force:
                raise self._conflict(t, name, conflicts)
            for e, p in conflicts:
                e.paths.discard(p)
            if mine is not None:
                others = set().union(*(e.paths for e in entries if e is not mine and e.subresource == sub))
                for p in sorted(mine.paths - new_set, key=len):  # a list item before its fields (its key)
                    if not covers(others, p) and not covers(new_set, p):
                        remove(merged, p, new_set | others)
            else:
                mine = Entry(manager, "Apply", "", "", set(), sub)
                entries.append(mine)
            mine.paths = new_set
            mine.api_version = t.api_version
            mine.time = now_text(self.clock())
            if live is None:
                merged.setdefault("metadata", {})
                merged["metadata"]["name"] = name
            self._validate(t, merged)
            self._secret_data(t, merged)
            entries = [e for e in entries if e.paths]
            if live is not None:
                before = [(e.manager, e.operation, e.subresource, e.paths) for e in _entries(live)]
                after = [(e.manager, e.operation, e.subresource, e.paths) for e in entries]
                trial = copy.deepcopy(merged)
                trial["metadata"].pop("managedFields", None)
                if "managedFields" in live["metadata"]:
                    trial["metadata"]["managedFields"] = live["metadata"]["managedFields"]
                trial["apiVersion"], trial["kind"] = live.get("apiVersion"), live.get("kind")
                if trial == live and before == after:
                    return self.serve(t, live), 200  # a no-op apply writes nothing
            return self._commit(t, key, live, merged, entries, dry_run), (201 if live is None else 200)

    def _conflict(self, t: ResourceType, name: str, conflicts: list[tuple[Entry, tuple[str, ...]]]) -> ApiError:
        causes = [{"type": "FieldManagerConflict", "message": f"conflict with {e.label()}", "field": path_text(p)}
                  for e, p in conflicts]
        if len(conflicts) == 1:
            e, p = conflicts[0]
            text = f"Apply failed with 1 conflict: conflict with {e.label()}: {path_text(p)}"
        else:
            by: dict[str, list[str]] = {}
            for e, p in conflicts:
                by.setdefault(e.label(), []).append(path_text(p))
            lines = []
            for label in sorted(by):
                lines.append(f"conflicts with {label}:")
                lines.extend(f"- {p}" for p in by[label])
            text = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
        return ApiError(409, text, "Conflict", {"causes": causes})

    def _own_update(self, t: ResourceType, entries: list[Entry], old: dict[str, Any] | None, new: dict[str, Any],
                    manager: str, sub: str) -> None:
        """Record an Update: `manager` takes the fields it changed; removed fields leave every manager."""
        schema = self.schema(t)
        old_set = field_set(self._view(t, old, sub), schema) if old else set()
        new_view = self._view(t, new, sub)
        new_set = field_set(new_view, schema)
        old_view = self._view(t, old, sub) if old else {}
        changed = {p for p in new_set if p not in old_set or (is_leaf(p) and resolve(old_view, p) != resolve(
            new_view, p))}
        removed = old_set - new_set
        for e in entries:
            if e.subresource != sub:
                continue
            e.paths -= removed
            e.paths -= {p for p in e.paths if any(p[:len(r)] == r for r in removed)}
            if not (e.manager == manager and e.operation == "Update"):
                e.paths -= changed
        if changed:
            mine = _find(entries, manager, "Update", sub)
            if mine is None:
                mine = Entry(manager, "Update", t.api_version, "", set(), sub)
                entries.append(mine)
            mine.paths |= changed
            mine.api_version = t.api_version
            mine.time = now_text(self.clock())
        entries[:] = [e for e in entries if e.paths]

    def _secret_data(self, t: ResourceType, obj: dict[str, Any]) -> None:
        if t.kind != "Secret" or t.group:
            return
        obj.setdefault("type", "Opaque")  # the server's default
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()

    def _commit(self, t: ResourceType, key: Key, old: dict[str, Any] | None, new: dict[str, Any],
                entries: list[Entry], dry_run: bool) -> dict[str, Any]:
        now = self.clock()
        meta = new.setdefault("metadata", {})
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_text(now)
            if t.generation:
                meta["generation"] = 1
        elif t.generation:
            gen = int(old["metadata"].get("generation", 1))
            strip = ("metadata", "status", "apiVersion", "kind")
            if {k: v for k, v in new.items() if k not in strip} != {k: v for k, v in old.items() if k not in strip}:
                gen += 1
            meta["generation"] = gen
        meta["managedFields"] = [e.doc() for e in entries]
        if not meta["managedFields"]:
            del meta["managedFields"]
        self._controllers(t, key, old, new, now, dry_run)
        if dry_run:
            meta["resourceVersion"] = old["metadata"]["resourceVersion"] if old else ""
            if not meta["resourceVersion"]:
                del meta["resourceVersion"]
            return self.serve(t, new)
        if old is not None and old["metadata"].get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove_now(t, key, "Background")
            return self.serve(t, new)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = new
        if t.group == "apiextensions.k8s.io" and t.plural == "customresourcedefinitions":
            self.types.register_crd(new)
        return self.serve(t, new)

    def delete(self, t: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool = False
               ) -> dict[str, Any]:
        with self.lock:
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            if live is None:
                raise not_found(t, name)
            pre = options.get("preconditions") or {}
            uid, rv = pre.get("uid"), pre.get("resourceVersion")
            if uid and uid != live["metadata"]["uid"]:
                raise ApiError(409, f'Operation cannot be fulfilled on {_gr(t)} "{name}": Precondition failed: UID '
                               f"in precondition: {uid}, UID in object meta: {live['metadata']['uid']}", "Conflict",
                               {"name": name, "group": t.group, "kind": t.plural})
            if rv and str(rv) != live["metadata"]["resourceVersion"]:
                raise ApiError(409, f'Operation cannot be fulfilled on {_gr(t)} "{name}": Precondition failed: '
                               f"ResourceVersion in precondition: {rv}, ResourceVersion in object meta: "
                               f"{live['metadata']['resourceVersion']}", "Conflict",
                               {"name": name, "group": t.group, "kind": t.plural})
            policy = str(options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents")
                                                             else "Background"))
            if policy not in ("Orphan", "Background", "Foreground"):
                raise ApiError(422, f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                               f'"{policy}": supported values: "Foreground", "Background", "Orphan", "nil"', "Invalid")
            if t.group == "" and t.plural == "namespaces" and name in ("default", "kube-system", "kube-public"):
                raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                               "Forbidden", {"name": name, "kind": "namespaces"})
            done = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": t.group, "kind": t.plural, "uid": live["metadata"]["uid"]}}
            if dry_run:
                return done
            if live["metadata"].get("finalizers"):
                if not live["metadata"].get("deletionTimestamp"):
                    new = copy.deepcopy(live)
                    new["metadata"]["deletionTimestamp"] = now_text(self.clock())
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    self.rv += 1
                    new["metadata"]["resourceVersion"] = str(self.rv)
                    self.objects[key] = new
                return self.serve(t, self.objects[key])
            self._remove_now(t, key, policy)
            return done

    def _remove_now(self, t: ResourceType, key: Key, policy: str) -> None:
        obj = self.objects.pop(key, None)
        self.pending.pop(key, None)
        if obj is None:
            return
        self.rv += 1
        uid = obj["metadata"].get("uid")
        if t.group == "" and t.plural == "namespaces":
            for k in [k for k in self.objects if k[2] == key[3] and k[2]]:
                self.objects.pop(k, None)
                self.pending.pop(k, None)
        if t.group == "apiextensions.k8s.io" and t.plural == "customresourcedefinitions":
            spec = obj.get("spec") or {}
            group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
            self.types.unregister_crd(key[3])
            for k in [k for k in self.objects if (k[0], k[1]) == (group, plural)]:
                self.objects.pop(k, None)
        dependents = [k for k, o in self.objects.items()
                      if any(r.get("uid") == uid for r in o.get("metadata", {}).get("ownerReferences") or [])]
        storage = self.types.storage_types()
        for k in dependents:
            dep = self.objects.get(k)
            if dep is None:
                continue
            if policy == "Orphan":
                refs = [r for r in dep["metadata"]["ownerReferences"] if r.get("uid") != uid]
                dep = copy.deepcopy(dep)
                if refs:
                    dep["metadata"]["ownerReferences"] = refs
                else:
                    dep["metadata"].pop("ownerReferences")
                self.rv += 1
                dep["metadata"]["resourceVersion"] = str(self.rv)
                self.objects[k] = dep
            elif dep["metadata"].get("finalizers"):
                if not dep["metadata"].get("deletionTimestamp"):
                    dep = copy.deepcopy(dep)
                    dep["metadata"]["deletionTimestamp"] = now_text(self.clock())
                    dep["metadata"]["deletionGracePeriodSeconds"] = 0
                    self.rv += 1
                    dep["metadata"]["resourceVersion"] = str(self.rv)
                    self.objects[k] = dep
            elif (k[0], k[1]) in storage:
                self._remove_now(storage[(k[0], k[1])], k, policy)

    # ------------------------------------------------------------------------------------------
    # test hooks and simulated controllers

    def seed(self, t: ResourceType, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        """Create or replace an object directly (test setup), recording ownership by `manager`."""
        with self.lock:
            ns = str(obj.get("metadata", {}).get("namespace") or "") if t.namespaced else ""
            if t.namespaced and not ns:
                ns = "default"
            ns_type = self.types.by_kind("v1", "Namespace")
            if t.namespaced and not self.namespace_exists(ns) and ns_type is not None:
                self.create(ns_type, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, manager)
            body = copy.deepcopy(obj)
            body.setdefault("metadata", {})
            if t.namespaced:
                body["metadata"]["namespace"] = ns
            live = self.objects.get(self.key(t, ns, str(body["metadata"].get("name", ""))))
            if live is None:
                status = body.get("status")
                out = self.create(t, ns, body, manager)
                if status is not None and t.status:
                    out = self.set_status(t, ns, out["metadata"]["name"], status)
                return out
            body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            return self.update(t, ns, str(body["metadata"]["name"]), body, manager)

    def set_status(self, t: ResourceType, ns: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            if live is None:
                raise not_found(t, name)
            new = copy.deepcopy(live)
            new["status"] = copy.deepcopy(status)
            self.pending.pop(key, None)
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new
            return self.serve(t, new)

    def hold(self, t: ResourceType, ns: str, name: str) -> None:
        with self.lock:
            key = self.key(t, ns, name)
            self.held.add(key)
            live = self.objects.get(key)
            if live is not None and (t.group, t.plural) in _WORKLOADS:
                self.set_status(t, ns, name, _progressing(t, live, self.clock()))
                self.pending[key] = self.clock()

    def release(self, t: ResourceType, ns: str, name: str) -> None:
        with self.lock:
            key = self.key(t, ns, name)
            self.held.discard(key)
            if key in self.pending:
                self.pending[key] = min(self.pending[key], self.clock())
            self.tick()

    def tick(self) -> None:
        """Let the simulated controllers finish what is due."""
        with self.lock:
            now = self.clock()
            for key, due in sorted(self.pending.items()):
                if due > now or key in self.held or key in self.image_held:
                    continue
                del self.pending[key]
                live = self.objects.get(key)
                storage = self.types.storage_types()
                t = storage.get((key[0], key[1]))
                if live is None or t is None:
                    continue
                new = copy.deepcopy(live)
                new["status"] = _ready(t, live, now)
                self.rv += 1
                new["metadata"]["resourceVersion"] = str(self.rv)
                self.objects[key] = new

    def _controllers(self, t: ResourceType, key: Key, old: dict[str, Any] | None, new: dict[str, Any],
                     now: float, dry_run: bool) -> None:
        if t.group == "" and t.plural == "namespaces" and old is None:
            new["status"] = {"phase": "Active"}
        if t.group == "" and t.plural == "services" and old is None:
            spec = new.setdefault("spec", {})
            if spec.get("type") != "ExternalName" and not spec.get("clusterIP"):
                ip = f"10.96.{(self.rv + 1) // 250 % 250}.{(self.rv + 1) % 250 + 2}"
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
        if t.group == "apiextensions.k8s.io" and t.plural == "customresourcedefinitions":
            names = (new.get("spec") or {}).get("names") or {}
            new["status"] = {"acceptedNames": copy.deepcopy(names), "storedVersions": [
                v.get("name") for v in (new.get("spec") or {}).get("versions") or [] if v.get("storage")],
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found", "lastTransitionTime": now_text(now)},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted", "lastTransitionTime": now_text(now)}]}
        if (t.group, t.plural) not in _WORKLOADS or dry_run:  # no controller sees a dry run
            return
        changed = old is None or new["metadata"].get("generation") != old["metadata"].get("generation")
        if not changed:
            return
        if self.held_images and _runs_image(new, self.held_images):
            self.image_held.add(key)
        else:
            self.image_held.discard(key)
        if self.ready_after <= 0 and key not in self.held and key not in self.image_held:
            new["status"] = _ready(t, new, now)
            self.pending.pop(key, None)
        else:
            new["status"] = _progressing(t, new, now)
            self.pending[key] = now + self.ready_after


def _runs_image(obj: dict[str, Any], patterns: tuple[str, ...]) -> bool:
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    images = [str(c.get("image") or "") for k in ("initContainers", "containers") for c in pod.get(k) or []
              if isinstance(c, dict)]
    return any(fnmatch.fnmatchcase(i, p) for i in images for p in patterns)


def _replicas(obj: dict[str, Any]) -> int:
    value = (obj.get("spec") or {}).get("replicas", 1)
    return value if isinstance(value, int) else 1


def _cond(kind: str, status: str, reason: str, message: str, now: float) -> dict[str, Any]:
    ts = now_text(now)
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastUpdateTime": ts, "lastTransitionTime": ts}


def _progressing(t: ResourceType, obj: dict[str, Any], now: float) -> dict[str, Any]:
    gen = obj["metadata"].get("generation", 1)
    n = _replicas(obj)
    name = obj["metadata"].get("name", "")
    if t.plural == "deployments":
        return {"observedGeneration": gen, "replicas": n, "updatedReplicas": 0, "unavailableReplicas": n,
                "conditions": [
                    _cond("Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", now),
                    _cond("Progressing", "True", "ReplicaSetUpdated",
                          f'ReplicaSet "{name}" is progressing.', now)]}
    if t.plural == "statefulsets":
        return {"observedGeneration": gen, "replicas": n, "currentReplicas": 0, "updatedReplicas": 0,
                "readyReplicas": 0, "availableReplicas": 0}
    if t.plural == "daemonsets":
        return {"observedGeneration": gen, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
                "numberReady": 0, "updatedNumberScheduled": 0, "numberAvailable": 0, "numberUnavailable": 1,
                "numberMisscheduled": 0}
    if t.plural == "replicasets":
        return {"observedGeneration": gen, "replicas": n, "readyReplicas": 0, "availableReplicas": 0}
    if t.plural == "jobs":
        return {"active": 1, "startTime": now_text(now), "ready": 0}
    return {"phase": "Pending"}


def _ready(t: ResourceType, obj: dict[str, Any], now: float) -> dict[str, Any]:
    gen = obj["metadata"].get("generation", 1)
    n = _replicas(obj)
    name = obj["metadata"].get("name", "")
    if t.plural == "deployments":
        return {"observedGeneration": gen, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                "availableReplicas": n, "conditions": [
                    _cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                          now),
                    _cond("Progressing", "True", "NewReplicaSetAvailable",
                          f'ReplicaSet "{name}" has successfully progressed.', now)]}
    if t.plural == "statefulsets":
        return {"observedGeneration": gen, "replicas": n, "currentReplicas": n, "updatedReplicas": n,
                "readyReplicas": n, "availableReplicas": n, "currentRevision": f"{name}-{gen}",
                "updateRevision": f"{name}-{gen}"}
    if t.plural == "daemonsets":
        return {"observedGeneration": gen, "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
                "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberMisscheduled": 0}
    if t.plural == "replicasets":
        return {"observedGeneration": gen, "replicas": n, "readyReplicas": n, "availableReplicas": n,
                "fullyLabeledReplicas": n}
    if t.plural == "jobs":
        completions = (obj.get("spec") or {}).get("completions", 1)
        prior = obj.get("status") or {}
        ts = now_text(now)
        return {"startTime": prior.get("startTime", ts), "completionTime": ts,
                "succeeded": completions if isinstance(completions, int) else 1, "ready": 0, "conditions": [
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods", "lastProbeTime": ts,
                     "lastTransitionTime": ts},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods", "lastProbeTime": ts,
                     "lastTransitionTime": ts}]}
    spec = obj.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    return {"phase": "Bound", "accessModes": spec.get("accessModes", ["ReadWriteOnce"]),
            "capacity": {"storage": storage}}

