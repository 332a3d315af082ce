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
import collections
import copy
import fnmatch
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from velapy.kube.emulator import rules
from velapy.kube.emulator.defaults import canonical_quantities, canonicalize
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

# the field selectors a kind's registry supports beyond metadata.name and metadata.namespace
_FIELD_LABELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "events"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                     "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                     "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("", "persistentvolumeclaims"): (),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
}

# the generateName suffix alphabet of apimachinery's util/rand.String (no vowels, no 0/1/3: no words, no look-alikes)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

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


def invalid(t: ResourceType, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """The 422 of a refused object: `Kind.group "name" is invalid: field: message` (several in brackets), as
    apimachinery's errors.NewInvalid writes it."""
    gk = f"{t.kind}.{t.group}" if t.group else t.kind
    parts = [f"{f}: {m}" if f else m for f, m in causes]
    text = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    kinds = {"Required": "FieldValueRequired", "Forbidden": "FieldValueForbidden",
             "Unsupported": "FieldValueNotSupported", "Too long": "FieldValueTooLong"}
    return ApiError(422, f'{gk} "{name}" is invalid: {text}', "Invalid", {
        "name": name, "group": t.group, "kind": t.kind,
        "causes": [{"reason": next((r for k, r in kinds.items() if m.startswith(k)), "FieldValueInvalid"),
                    "message": m, "field": f} for f, m in causes]})


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
    crd_delay: float = 0.0  # seconds until a new CRD is Established (and its kind served)
    namespace_delay: float = 0.0  # seconds a deleted namespace stays Terminating before its contents go
    crd_due: dict[str, float] = field(default_factory=dict)  # CRD name → when it becomes Established
    namespace_due: dict[str, float] = field(default_factory=dict)  # Terminating namespace → when it is emptied
    created: dict[Key, int] = field(default_factory=dict)  # the resourceVersion each object was created at
    deleted: collections.deque[tuple[int, Key, dict[str, Any]]] = field(
        default_factory=lambda: collections.deque(maxlen=1000))  # recent deletions, for watches from an RV
    foreground: set[Key] = field(default_factory=set)  # owners waiting for their dependents (foreground deletion)
    kind_rules: bool = True  # defaults.py and rules.validate (off: a unit test of the merge model alone)
    _request: threading.local = field(default_factory=threading.local)  # per-request: the warnings to send
    _seeding: bool = False  # put_object: test setup skips the per-kind validation (a minimal object will do)
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
            self.crd_due.clear()
            self.namespace_due.clear()
            self.foreground.clear()
            self.created.clear()
            self.deleted.clear()
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
        allowed = (*_FIELD_LABELS.get((t.group, t.plural), ()), "metadata.name", "metadata.namespace")
        for path, _op, _value in terms:
            if path not in allowed:
                # each kind's registry declares its selectable fields (GetAttrs / selectableFields)
                raise ApiError(400, f'"{path}" is not a known field selector: only "metadata.name", '
                               '"metadata.namespace"' if t.crd else f"field label not supported: {path}")
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

    def created_at(self, t: ResourceType, ns: str, name: str) -> int:
        """The resourceVersion an object was created at (0: before this store kept count)."""
        with self.lock:
            return self.created.get(self.key(t, ns, name), 0)

    def deleted_since(self, t: ResourceType, ns: str, since: int, label_selector: str = "",
                      field_selector: str = "") -> list[dict[str, Any]]:
        """Objects of `t` deleted after resourceVersion `since` (the last 1,000 deletions are kept)."""
        reqs, terms = parse_label_selector(label_selector), parse_field_selector(field_selector)
        with self.lock:
            out = []
            for rv, key, obj in self.deleted:
                if rv <= since or (key[0], key[1]) != t.storage_key or (ns and key[2] != ns):
                    continue
                labels = obj.get("metadata", {}).get("labels") or {}
                if all(r.matches(labels) for r in reqs) and field_matches(obj, terms):
                    out.append(self.serve(t, obj))
            return out

    def _crd_schema(self, t: ResourceType) -> dict[str, Any] | None:
        """The structural schema of a custom resource's version (None: none given, so nothing is pruned)."""
        crd = self.objects.get(("apiextensions.k8s.io", "customresourcedefinitions", "", t.crd))
        for v in ((crd or {}).get("spec") or {}).get("versions") or []:
            if v.get("name") == t.version:
                schema = (v.get("schema") or {}).get("openAPIV3Schema")
                return schema if isinstance(schema, dict) else None
        return None

    def collect_warnings(self) -> list[str]:
        """Start collecting this thread's request warnings (the list fills as the request is served)."""
        self._request.warnings = []
        out: list[str] = self._request.warnings
        return out

    def exists(self, t: ResourceType, ns: str, name: str) -> bool:
        with self.lock:
            return self.key(t, ns, name) in self.objects

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
        if not t.crd and self.kind_rules and not self._seeding:
            causes.extend(c for c in rules.validate(t.group, t.kind, obj) if c not in causes)
        if causes:
            raise invalid(t, name, causes)

    def _canonical(self, t: ResourceType, obj: dict[str, Any]) -> None:
        """What the server stores: canonical quantities, defaults, no empty maps (built-in kinds; defaults.py)."""
        if t.crd:
            schema = self._crd_schema(t)
            if schema is not None:
                body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
                causes: list[tuple[str, str]] = []
                rules.check_schema(body, schema, "", causes)
                if causes:
                    raise invalid(t, str(obj.get("metadata", {}).get("name", "")), causes)
            return
        if not self.kind_rules:
            return
        errors = canonicalize(t.group, t.kind, obj)
        if errors:
            raise invalid(t, str(obj.get("metadata", {}).get("name", "")), errors)
        meta = obj.get("metadata") or {}
        spec = obj.get("spec")
        if (t.group, t.kind) == ("batch", "Job") and not meta.get("uid") and isinstance(spec, dict) \
                and not spec.get("manualSelector"):
            # the Job strategy's generateSelector: the new Job's uid selects its pods, and the template carries it
            meta["uid"] = str(uuid.uuid4())
            name = str(meta.get("name", ""))
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
            template = spec.setdefault("template", {})
            if isinstance(template, dict):
                labels = template.setdefault("metadata", {}).setdefault("labels", {})
                labels.update({"batch.kubernetes.io/controller-uid": meta["uid"], "batch.kubernetes.io/job-name": name,
                               "controller-uid": meta["uid"], "job-name": name})

    def _fields(self, t: ResourceType, obj: dict[str, Any], validation: str, apply: bool) -> None:
        """fieldValidation: Strict refuses a field the kind's schema does not declare (400); otherwise it is
        dropped, as the server's decoder drops it (the Warn header is not sent)."""
        if validation not in ("", "Strict", "Warn", "Ignore"):
            raise ApiError(400, f'fieldValidation: Invalid value: "{validation}": must be one of "Ignore", '
                           '"Warn", "Strict"')
        if t.crd:
            schema = self._crd_schema(t)
            unknown: list[str] = []
            if schema is not None:
                body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
                rules.prune(body, schema, "", unknown)
                if validation != "Strict":
                    for k in [k for k in obj if k not in ("apiVersion", "kind", "metadata") and k not in body]:
                        del obj[k]
        else:
            unknown = rules.unknown_fields(t.api_version, t.kind, obj, prune=validation != "Strict") or []
        if not unknown:
            return
        if validation in ("", "Warn"):  # the default since 1.23: dropped, with a warning header per field
            warnings = getattr(self._request, "warnings", None)
            if warnings is not None:
                warnings.extend(f'unknown field "{u}"' for u in unknown)
        if validation != "Strict":
            return
        if apply:
            raise ApiError(400, "failed to create typed patch object "
                           f"({(obj.get('metadata') or {}).get('namespace', '')}/"
                           f"{(obj.get('metadata') or {}).get('name', '')}; {t.api_version}, Kind={t.kind}): "
                           + "; ".join(f".{u}: field not declared in schema" for u in unknown))
        raise ApiError(400, f'{t.kind} in version "{t.version}" cannot be handled as a {t.kind}: strict decoding '
                       "error: " + ", ".join(f'unknown field "{u}"' for u in unknown))

    def _check_update(self, t: ResourceType, live: dict[str, Any], new: dict[str, Any]) -> None:
        """Immutable fields and finalizers of an object being deleted (rules.immutable)."""
        causes = rules.immutable(t.group if not t.crd else "~crd", t.kind, live, new)
        if causes:
            raise invalid(t, str(live["metadata"].get("name", "")), causes)

    def _terminating(self, t: ResourceType, ns: str, name: str) -> None:
        """NamespaceLifecycle admission: nothing new in a namespace that is being deleted (403)."""
        if not t.namespaced:
            return
        owner = self.objects.get(("", "namespaces", "", ns))
        if owner is not None and owner["metadata"].get("deletionTimestamp"):
            raise ApiError(403, f'{_gr(t)} "{name}" is forbidden: unable to create new content in namespace {ns} '
                           "because it is being terminated", "Forbidden",
                           {"name": name, "group": t.group, "kind": t.plural,
                            "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being "
                                        "terminated", "field": "metadata.namespace"}]})

    def _view(self, t: ResourceType, obj: dict[str, Any], sub: str) -> dict[str, Any]:
        """The part of an object a write through the main resource or `status` may own."""
        if sub == "status":
            return {"status": obj["status"]} if "status" in obj else {}
        if t.status:
            return {k: v for k, v in obj.items() if k != "status"}
        return obj

    # ------------------------------------------------------------------------------------------
    # writes

    def create(self, t: ResourceType, ns: str, body: Any, manager: str, dry_run: bool = False,
               validation: str = "") -> dict[str, Any]:
        with self.lock:
            obj = self._check_identity(t, ns, "", copy.deepcopy(body))
            self._fields(t, obj, validation, False)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = str(meta["generateName"]) + "".join(random.choices(_SUFFIX_ALPHABET, k=5))
            if t.namespaced:
                meta["namespace"] = ns
            obj["apiVersion"], obj["kind"] = t.api_version, t.kind
            for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                      "deletionTimestamp", "selfLink"):
                meta.pop(k, None)
            if t.status:
                obj.pop("status", None)
            self._secret_data(t, obj)
            self._canonical(t, obj)
            self._validate(t, obj)
            key = self.key(t, ns, str(meta["name"]))
            if key in self.objects:
                raise ApiError(409, f'{_gr(t)} "{meta["name"]}" already exists', "AlreadyExists",
                               {"name": meta["name"], "group": t.group, "kind": t.plural})
            self._need_namespace(t, ns)
            self._terminating(t, ns, str(meta["name"]))
            entries: list[Entry] = []
            self._own_update(t, entries, None, obj, manager, "")
            return self._commit(t, key, None, obj, entries, dry_run)

    def update(self, t: ResourceType, ns: str, name: str, body: Any, manager: str, dry_run: bool = False,
               sub: str = "", validation: str = "") -> dict[str, Any]:
        with self.lock:
            obj = self._check_identity(t, ns, name, copy.deepcopy(body))
            self._fields(t, obj, validation, False)
            key = self.key(t, ns, name)
            live = self.objects.get(key)
            if live is None:
                raise not_found(t, name)
            # every built-in kind velapy handles and every custom resource allow an unconditional update (their
            # strategies' AllowUnconditionalUpdate is true): a PUT without resourceVersion overwrites
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
        if t.kind == "Service" and not t.group and sub != "status":
            spec, old_spec = obj.get("spec"), live.get("spec") or {}
            if isinstance(spec, dict) and not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]  # PatchAllocatedValues: an update keeps the allocated IP
                spec["clusterIPs"] = copy.deepcopy(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
        self._secret_data(t, obj)
        self._canonical(t, obj)
        self._validate(t, obj)
        if sub != "status":
            self._check_update(t, live, obj)
        entries = _entries(live)
        self._own_update(t, entries, live, obj, manager, sub)
        return self._commit(t, key, live, obj, entries, dry_run)

    def _modified(self, t: ResourceType, name: str) -> ApiError:
        return ApiError(409, f'Operation cannot be fulfilled on {_gr(t)} "{name}": the object has been modified; '
                        "please apply your changes to the latest version and try again", "Conflict",
                        {"name": name, "group": t.group, "kind": t.plural})

    def patch(self, t: ResourceType, ns: str, name: str, body: Any, content_type: str, manager: str, *,
              force: bool = False, dry_run: bool = False, sub: str = "", validation: str = ""
              ) -> tuple[dict[str, Any], int]:
        if content_type == APPLY:
            return self.apply(t, ns, name, body, manager, force=force, dry_run=dry_run, sub=sub,
                              validation=validation)
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
            self._fields(t, new, validation, False)
            new["metadata"].setdefault("name", name)
            if new["metadata"].get("resourceVersion") == live["metadata"]["resourceVersion"]:
                new["metadata"].pop("resourceVersion")
            return self._replace(t, key, live, new, manager, dry_run, sub), 200

    def apply(self, t: ResourceType, ns: str, name: str, body: Any, manager: str, *, force: bool = False,
              dry_run: bool = False, sub: str = "", validation: str = "") -> tuple[dict[str, Any], int]:
        """Server-side apply (PATCH application/apply-patch+yaml)."""
        if not manager:
            raise ApiError(400, "PATCH, application/apply-patch+yaml requires fieldManager to be set", "BadRequest")
        with self.lock:
            applied = self._check_identity(t, ns, name, drop_nulls(copy.deepcopy(body)))
            if not body.get("apiVersion") or not body.get("kind"):
                raise ApiError(400, "apiVersion and kind must be set in an apply configuration")
            self._fields(t, applied, validation, True)
            if not t.crd:
                canonical_quantities(t.group, t.kind, applied)  # the typed value: 0.5 and 500m are one quantity
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
                self._terminating(t, ns, name)
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
            self._secret_data(t, merged)
            if sub != "status":
                self._canonical(t, merged)
            self._validate(t, merged)
            if live is not None and sub != "status":
                self._check_update(t, live, merged)
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
            meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # a Job's was chosen for its selector
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
        if old is not None and old["metadata"].get("deletionTimestamp") and not meta.get("finalizers") \
                and (t.group, t.plural) != ("", "namespaces"):
            self._remove_now(t, key, "Background")
            return self.serve(t, new)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = new
        if old is None:
            self.created[key] = self.rv
        if t.group == "apiextensions.k8s.io" and t.plural == "customresourcedefinitions" and \
                meta["name"] not in self.crd_due:
            self.types.register_crd(new)
        return self.serve(t, new)

    def _establish(self, now: float) -> None:
        for name, due in sorted(self.crd_due.items()):
            if due > now:
                continue
            del self.crd_due[name]
            crd_type = self.types.by_kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
            key = ("apiextensions.k8s.io", "customresourcedefinitions", "", name)
            live = self.objects.get(key)
            if live is None or crd_type is None:
                continue
            new = copy.deepcopy(live)
            self._controllers(crd_type, key, live, new, now, False)  # established now
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new
            self.types.register_crd(new)

    def delete(self, t: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool = False
               ) -> dict[str, Any]:
        return self.delete_answer(t, ns, name, options, dry_run)[0]

    def delete_answer(self, t: ResourceType, ns: str, name: str, options: dict[str, Any], dry_run: bool = False
                      ) -> tuple[dict[str, Any], int]:
        """A delete → (the answer, its HTTP code). An object that stays (finalizers, a Terminating namespace,
        foreground deletion) is answered with itself: 200, or 202 when `orphanDependents: false` was asked for
        (apiserver handlers/delete.go: "Return http.StatusAccepted if the resource was not deleted immediately
        and user requested cascading deletion by setting OrphanDependents=false")."""
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
                return done, 200
            held = 202 if options.get("orphanDependents") is False else 200
            if t.group == "" and t.plural == "namespaces":
                # the namespace goes Terminating; the namespace controller empties it, then removes it (tick)
                if not live["metadata"].get("deletionTimestamp"):
                    new = self._mark_deleted(key, live)
                    new["status"] = {"phase": "Terminating"}
                    self.namespace_due[name] = self.clock() + self.namespace_delay
                return self.serve(t, self.objects[key]), held
            if policy == "Foreground" and self._dependents(live):
                # the owner stays, with the foregroundDeletion finalizer, until its dependents are gone
                new = self._mark_deleted(key, live)
                if "foregroundDeletion" not in new["metadata"].setdefault("finalizers", []):
                    new["metadata"]["finalizers"].append("foregroundDeletion")
                self.foreground.add(key)
                for k in self._dependents(new):
                    dep = self.objects[k]
                    dt = self.types.storage_types().get((k[0], k[1]))
                    if dt is not None and not dep["metadata"].get("deletionTimestamp"):
                        self.delete_answer(dt, k[2], k[3], {"propagationPolicy": "Foreground"})
                self._finish_foreground()
                out = self.objects.get(key)
                return (self.serve(t, out), held) if out is not None else (done, 200)
            if live["metadata"].get("finalizers"):
                if not live["metadata"].get("deletionTimestamp"):
                    self._mark_deleted(key, live)
                return self.serve(t, self.objects[key]), held
            self._remove_now(t, key, policy)
            return done, 200

    def _mark_deleted(self, key: Key, live: dict[str, Any]) -> dict[str, Any]:
        new = copy.deepcopy(live)
        if not new["metadata"].get("deletionTimestamp"):
            new["metadata"]["deletionTimestamp"] = now_text(self.clock())
            new["metadata"]["deletionGracePeriodSeconds"] = 0
        self.rv += 1
        new["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[key] = new
        return new

    def _dependents(self, owner: dict[str, Any], blocking: bool = False) -> list[Key]:
        """Objects whose ownerReferences name `owner` (with `blocking`: only those with blockOwnerDeletion)."""
        uid = owner["metadata"].get("uid")
        return [k for k, o in self.objects.items()
                if any(r.get("uid") == uid and (not blocking or r.get("blockOwnerDeletion") is True)
                       for r in o.get("metadata", {}).get("ownerReferences") or [])]

    def _finish_foreground(self) -> None:
        """The garbage collector's foreground step: an owner whose dependents are all gone loses its
        foregroundDeletion finalizer (and goes when no other finalizer holds it)."""
        storage = self.types.storage_types()
        for key in sorted(self.foreground):
            obj = self.objects.get(key)
            finalizers = obj["metadata"].get("finalizers") or [] if obj is not None else []
            if obj is None or "foregroundDeletion" not in finalizers:
                self.foreground.discard(key)
                continue
            if self._dependents(obj, blocking=True):
                continue  # only dependents with blockOwnerDeletion hold their owner
            self.foreground.discard(key)
            rest = [f for f in finalizers if f != "foregroundDeletion"]
            t = storage.get((key[0], key[1]))
            if not rest and t is not None:
                self._remove_now(t, key, "Background")
                continue
            new = copy.deepcopy(obj)
            new["metadata"]["finalizers"] = rest
            self.rv += 1
            new["metadata"]["resourceVersion"] = str(self.rv)
            self.objects[key] = new

    def _finish_namespaces(self, now: float) -> None:
        """The namespace controller: a Terminating namespace past its delay loses its contents (objects with
        finalizers are marked deleted and hold it), then goes itself."""
        storage = self.types.storage_types()
        for name, due in sorted(self.namespace_due.items()):
            if due > now:
                continue
            inside = [k for k in self.objects if k[2] == name]
            for k in inside:
                obj = self.objects.get(k)
                t = storage.get((k[0], k[1]))
                if obj is None or t is None:
                    continue
                if obj["metadata"].get("finalizers"):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self._mark_deleted(k, obj)
                else:
                    self._remove_now(t, k, "Background")
            if any(k[2] == name for k in self.objects):
                continue
            del self.namespace_due[name]
            ns_type = storage.get(("", "namespaces"))
            if ns_type is not None:
                self._remove_now(ns_type, ("", "namespaces", "", name), "Background")

    def _remove_now(self, t: ResourceType, key: Key, policy: str) -> None:
        obj = self.objects.pop(key, None)
        self.pending.pop(key, None)
        self.created.pop(key, None)
        if obj is None:
            return
        self.rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self.rv)
        self.deleted.append((self.rv, key, gone))
        uid = obj["metadata"].get("uid")
        if t.group == "" and t.plural == "namespaces":
            for k in [k for k in self.objects if k[2] == key[3] and k[2]]:
                self.objects.pop(k, None)
                self.pending.pop(k, None)
        if t.group == "apiextensions.k8s.io" and t.plural == "customresourcedefinitions":
            spec = obj.get("spec") or {}
            group, plural = spec.get("group"), (spec.get("names") or {}).get("plural")
            self.types.unregister_crd(key[3])
            self.crd_due.pop(key[3], None)
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
            self._seeding = True
            try:
                return self._seed(t, obj, manager)
            finally:
                self._seeding = False

    def _seed(self, t: ResourceType, obj: dict[str, Any], manager: str) -> dict[str, Any]:
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
            self._establish(now)
            if self.namespace_due:
                self._finish_namespaces(now)
            if self.foreground:
                self._finish_foreground()
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
            crd = str(new["metadata"].get("name", ""))
            if old is None and self.crd_delay > 0 and not self._seeding:
                # the apiextensions controllers accept the names and establish the CRD a moment later; until
                # then its kind is neither discovered nor served (tick → _establish)
                new["status"] = {"acceptedNames": {"kind": "", "plural": ""}, "conditions": [],
                                 "storedVersions": [v.get("name") for v in (new.get("spec") or {}).get("versions")
                                                    or [] if v.get("storage")]}
                if not dry_run:
                    self.crd_due[crd] = now + self.crd_delay
                return
            if crd in self.crd_due:
                return
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

