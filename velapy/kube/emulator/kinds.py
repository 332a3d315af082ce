"""The resource types an emulated cluster serves → discovery documents and lookups.

A `ResourceType` names one (group, version, plural) the server answers for, with the facts
discovery publishes (kind, singular name, scope, verbs, short names, categories) and the facts
the object semantics need (a status subresource, whether `metadata.generation` is kept).
`TypeRegistry` holds the built-in table plus the kinds registered by CustomResourceDefinitions and
renders `/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}` bodies from it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

RW = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
NO_COLLECTION_DELETE = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = RW
    status: bool = False  # has a status subresource (writes to the main resource keep status)
    generation: bool = False  # keeps metadata.generation
    singular: str = ""
    crd: str = ""  # name of the defining CRD ("" = built in)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per (group, plural); every served version sees the same object."""
        return (self.group, self.plural)


def _t(gv: str, kind: str, plural: str, namespaced: bool = True, short: tuple[str, ...] = (),
       status: bool = False, generation: bool = False, categories: tuple[str, ...] = (),
       verbs: tuple[str, ...] = RW) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced, short, categories, verbs, status, generation)


_ALL = ("all",)

BUILTIN: tuple[ResourceType, ...] = (
    _t("v1", "Namespace", "namespaces", False, ("ns",), status=True,
       verbs=NO_COLLECTION_DELETE),
    _t("v1", "ConfigMap", "configmaps", short=("cm",)),
    _t("v1", "Secret", "secrets"),
    _t("v1", "Service", "services", short=("svc",), status=True, categories=_ALL, verbs=NO_COLLECTION_DELETE),
    _t("v1", "ServiceAccount", "serviceaccounts", short=("sa",)),
    _t("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=("pvc",), status=True),
    _t("v1", "PersistentVolume", "persistentvolumes", False, ("pv",), status=True),
    _t("v1", "Pod", "pods", short=("po",), status=True, categories=_ALL),
    _t("v1", "Event", "events", short=("ev",)),
    _t("v1", "Endpoints", "endpoints", short=("ep",)),
    _t("v1", "ResourceQuota", "resourcequotas", short=("quota",), status=True),
    _t("v1", "LimitRange", "limitranges", short=("limits",)),
    _t("apps/v1", "Deployment", "deployments", short=("deploy",), status=True, generation=True, categories=_ALL),
    _t("apps/v1", "StatefulSet", "statefulsets", short=("sts",), status=True, generation=True, categories=_ALL),
    _t("apps/v1", "DaemonSet", "daemonsets", short=("ds",), status=True, generation=True, categories=_ALL),
    _t("apps/v1", "ReplicaSet", "replicasets", short=("rs",), status=True, generation=True, categories=_ALL),
    _t("batch/v1", "Job", "jobs", status=True, generation=True, categories=_ALL),
    _t("batch/v1", "CronJob", "cronjobs", short=("cj",), status=True, generation=True, categories=_ALL),
    _t("networking.k8s.io/v1", "Ingress", "ingresses", short=("ing",), status=True, generation=True),
    _t("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short=("netpol",), generation=True),
    _t("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _t("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), status=True,
       generation=True, categories=_ALL),
    _t("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short=("hpa",), status=True,
       generation=True, categories=_ALL),
    _t("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short=("pdb",), status=True, generation=True),
    _t("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _t("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _t("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _t("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _t("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False, ("crd", "crds"),
       status=True, generation=True, categories=("api-extensions",)),
    _t("storage.k8s.io/v1", "StorageClass", "storageclasses", False, ("sc",)),
    _t("multicluster.x-k8s.io/v1alpha1", "ServiceExport", "serviceexports", status=True, generation=True),
    _t("multicluster.x-k8s.io/v1alpha1", "ServiceImport", "serviceimports", short=("svcim",), status=True,
       generation=True),
    _t("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=("create",)),
    _t("authentication.k8s.io/v1", "SelfSubjectReview", "selfsubjectreviews", False, verbs=("create",)),
    _t("coordination.k8s.io/v1", "Lease", "leases"),
)

# the preferred version of a group comes first in BUILTIN (autoscaling/v2 before v1)
_SCALE_KINDS = {"deployments", "statefulsets", "replicasets"}


@dataclass
class TypeRegistry:
    """Built-in resource types plus those registered by CRDs, in registration order."""

    types: list[ResourceType] = field(default_factory=lambda: list(BUILTIN))

    def groups(self) -> dict[str, list[str]]:
        """group → served versions, preferred first (the core group "" included)."""
        out: dict[str, list[str]] = {}
        for t in self.types:
            versions = out.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
        return out

    def find(self, group: str, version: str, plural: str) -> ResourceType | None:
        for t in self.types:
            if t.group == group and t.version == version and t.plural == plural:
                return t
        return None

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for t in self.types:
            if t.group == group and t.version == version and t.kind == kind:
                return t
        return None

    def storage_types(self) -> dict[tuple[str, str], ResourceType]:
        """One representative (preferred) type per storage key."""
        out: dict[tuple[str, str], ResourceType] = {}
        for t in self.types:
            out.setdefault(t.storage_key, t)
        return out

    def register_crd(self, crd: dict[str, Any]) -> None:
        name = str(crd.get("metadata", {}).get("name", ""))
        self.unregister_crd(name)
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        kind = str(names.get("kind", ""))
        plural = str(names.get("plural", ""))
        group = str(spec.get("group", ""))
        if not (kind and plural and group):
            return
        namespaced = spec.get("scope", "Namespaced") != "Cluster"
        versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
        versions.sort(key=lambda v: not v.get("storage", False))  # the storage version is preferred
        for v in versions:
            has_status = "status" in (v.get("subresources") or {})
            self.types.append(ResourceType(
                group, str(v.get("name", "")), kind, plural, namespaced,
                tuple(str(s) for s in names.get("shortNames") or ()),
                tuple(str(c) for c in names.get("categories") or ()),
                RW, has_status, True, str(names.get("singular") or kind.lower()), crd=name))

    def unregister_crd(self, name: str) -> None:
        self.types = [t for t in self.types if t.crd != name or not name]


def resource_list(reg: TypeRegistry, group: str, version: str) -> dict[str, Any] | None:
    """The APIResourceList of one group version, or None when the server does not serve it."""
    types = [t for t in reg.types if t.group == group and t.version == version]
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for t in types:
        entry: dict[str, Any] = {"name": t.plural, "singularName": t.singular_name, "namespaced": t.namespaced,
                                 "kind": t.kind, "verbs": list(t.verbs)}
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        resources.append(entry)
        if t.status:
            resources.append({"name": f"{t.plural}/status", "singularName": "", "namespaced": t.namespaced,
                              "kind": t.kind, "verbs": ["get", "patch", "update"]})
        if t.plural in _SCALE_KINDS and not t.crd:
            resources.append({"name": f"{t.plural}/scale", "singularName": "", "namespaced": t.namespaced,
                              "group": "autoscaling", "version": "v1", "kind": "Scale",
                              "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": t.api_version, "resources": resources}


def _group_doc(name: str, versions: list[str]) -> dict[str, Any]:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def group_list(reg: TypeRegistry) -> dict[str, Any]:
    groups = [_group_doc(g, vs) for g, vs in reg.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group_doc(reg: TypeRegistry, group: str) -> dict[str, Any] | None:
    versions = reg.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, versions)}


def core_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


_PATCH_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string" if n != "force" else "boolean"}}
                 for n in ("dryRun", "fieldManager", "fieldValidation", "force")]


def openapi_root(reg: TypeRegistry) -> dict[str, Any]:
    """A minimal /openapi/v3 index: one entry per served group version."""
    paths = {}
    for group, versions in reg.groups().items():
        for version in versions:
            gv = f"api/{version}" if not group else f"apis/{group}/{version}"
            digest = hashlib.sha256(json.dumps(openapi_gv(reg, group, version), sort_keys=True).encode()).hexdigest()
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest[:32].upper()}"}
    return {"paths": paths}


def openapi_gv(reg: TypeRegistry, group: str, version: str) -> dict[str, Any] | None:
    """A minimal OpenAPI v3 document of one group version: the PATCH operations and their query
    parameters, without schemas. It is enough for kubectl to see that the server validates fields
    itself (so `kubectl apply` needs no `--validate=false`); `kubectl explain` finds nothing in it."""
    types = [t for t in reg.types if t.group == group and t.version == version]
    if not types:
        return None
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    paths: dict[str, Any] = {}
    for t in types:
        if "patch" not in t.verbs:
            continue
        item = f"{prefix}/namespaces/{{namespace}}/{t.plural}/{{name}}" if t.namespaced else \
            f"{prefix}/{t.plural}/{{name}}"
        paths[item] = {"patch": {
            "operationId": f"patch{t.kind}", "parameters": _PATCH_PARAMS, "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": t.group, "version": t.version, "kind": t.kind},
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (velapy emulator)", "version": "unversioned"},
            "paths": paths, "components": {"schemas": {}}}


def openapi_v2(version: str) -> dict[str, Any]:
    """A minimal /openapi/v2 (swagger 2.0) document: no paths or definitions. kubectl before 1.30 fetches it
    before every `apply` (its validator is built from it eagerly) and fails when it is missing; with an
    empty document it relies on the server's own field validation, which /openapi/v3 advertises."""
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": version}, "paths": {}, "definitions": {}}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def openapi_v2_protobuf(doc: dict[str, Any]) -> bytes:
    """The same document as the protobuf kubectl asks for (gnostic's openapi.v2.Document: swagger = 1,
    info = 2 with title = 1 and version = 2, paths = 8, definitions = 9)."""
    info = doc.get("info") or {}
    return (_field(1, str(doc.get("swagger", "2.0")).encode())
            + _field(2, _field(1, str(info.get("title", "")).encode())
                     + _field(2, str(info.get("version", "")).encode()))
            + _field(8, b"") + _field(9, b""))


OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
