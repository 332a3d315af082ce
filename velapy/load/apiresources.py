"""A `resource` (+ optional `group`) name → the API resource it means, as a cluster's RESTMapper answers.

Input: the names a user writes in a ref-objects selector (`deployment`, `deployments`, `deploy`,
`Deployment`) and optionally a group; CustomResourceDefinition objects that extend the table.
Output: an `APIResource` (kind, plural, singular, short names, group, preferred version, namespaced).

The table holds what a stock Kubernetes 1.30 API server serves (`kubectl api-resources`), plus the
multi-cluster Service API kinds ACK One Fleet distributes (ServiceExport / ServiceImport) and
KubeVela's own kinds. Resolution follows the mapper KubeVela is given: the plural and the singular
name match (case-insensitive), and short names are expanded as kubectl's and the `vela` CLI's
mapper do; an empty `group` searches every group. When several groups serve the name, the core
group wins (it always comes first in discovery, e.g. `events`); otherwise the name is ambiguous and
the user must set `group`. The executor's discovery can feed the same table later.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from velapy.errors import Diagnostic, InputError, Location


@dataclass(frozen=True)
class APIResource:
    """One resource of the API: how a server names it and how to address its objects."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    group: str
    version: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def describe(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(kind: str, plural: str, short: str, group: str, version: str, namespaced: bool = True) -> APIResource:
    return APIResource(kind, plural, kind.lower(), tuple(s for s in short.split(",") if s), group, version,
                       namespaced)


# kind, plural, short names, group, preferred version, namespaced. Groups in discovery order.
STOCK: tuple[APIResource, ...] = (
    _r("ConfigMap", "configmaps", "cm", "", "v1"),
    _r("Endpoints", "endpoints", "ep", "", "v1"),
    _r("Event", "events", "ev", "", "v1"),
    _r("LimitRange", "limitranges", "limits", "", "v1"),
    _r("Namespace", "namespaces", "ns", "", "v1", False),
    _r("Node", "nodes", "no", "", "v1", False),
    _r("PersistentVolumeClaim", "persistentvolumeclaims", "pvc", "", "v1"),
    _r("PersistentVolume", "persistentvolumes", "pv", "", "v1", False),
    _r("Pod", "pods", "po", "", "v1"),
    _r("PodTemplate", "podtemplates", "", "", "v1"),
    _r("ReplicationController", "replicationcontrollers", "rc", "", "v1"),
    _r("ResourceQuota", "resourcequotas", "quota", "", "v1"),
    _r("Secret", "secrets", "", "", "v1"),
    _r("ServiceAccount", "serviceaccounts", "sa", "", "v1"),
    _r("Service", "services", "svc", "", "v1"),
    _r("MutatingWebhookConfiguration", "mutatingwebhookconfigurations", "", "admissionregistration.k8s.io",
       "v1", False),
    _r("ValidatingWebhookConfiguration", "validatingwebhookconfigurations", "", "admissionregistration.k8s.io",
       "v1", False),
    _r("ValidatingAdmissionPolicy", "validatingadmissionpolicies", "", "admissionregistration.k8s.io", "v1",
       False),
    _r("ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings", "", "admissionregistration.k8s.io",
       "v1", False),
    _r("CustomResourceDefinition", "customresourcedefinitions", "crd,crds", "apiextensions.k8s.io", "v1", False),
    _r("APIService", "apiservices", "", "apiregistration.k8s.io", "v1", False),
    _r("ControllerRevision", "controllerrevisions", "", "apps", "v1"),
    _r("DaemonSet", "daemonsets", "ds", "apps", "v1"),
    _r("Deployment", "deployments", "deploy", "apps", "v1"),
    _r("ReplicaSet", "replicasets", "rs", "apps", "v1"),
    _r("StatefulSet", "statefulsets", "sts", "apps", "v1"),
    _r("HorizontalPodAutoscaler", "horizontalpodautoscalers", "hpa", "autoscaling", "v2"),
    _r("CronJob", "cronjobs", "cj", "batch", "v1"),
    _r("Job", "jobs", "", "batch", "v1"),
    _r("CertificateSigningRequest", "certificatesigningrequests", "csr", "certificates.k8s.io", "v1", False),
    _r("Lease", "leases", "", "coordination.k8s.io", "v1"),
    _r("EndpointSlice", "endpointslices", "", "discovery.k8s.io", "v1"),
    _r("Event", "events", "ev", "events.k8s.io", "v1"),
    _r("FlowSchema", "flowschemas", "", "flowcontrol.apiserver.k8s.io", "v1", False),
    _r("PriorityLevelConfiguration", "prioritylevelconfigurations", "", "flowcontrol.apiserver.k8s.io", "v1",
       False),
    _r("IngressClass", "ingressclasses", "", "networking.k8s.io", "v1", False),
    _r("Ingress", "ingresses", "ing", "networking.k8s.io", "v1"),
    _r("NetworkPolicy", "networkpolicies", "netpol", "networking.k8s.io", "v1"),
    _r("RuntimeClass", "runtimeclasses", "", "node.k8s.io", "v1", False),
    _r("PodDisruptionBudget", "poddisruptionbudgets", "pdb", "policy", "v1"),
    _r("ClusterRoleBinding", "clusterrolebindings", "", "rbac.authorization.k8s.io", "v1", False),
    _r("ClusterRole", "clusterroles", "", "rbac.authorization.k8s.io", "v1", False),
    _r("RoleBinding", "rolebindings", "", "rbac.authorization.k8s.io", "v1"),
    _r("Role", "roles", "", "rbac.authorization.k8s.io", "v1"),
    _r("PriorityClass", "priorityclasses", "pc", "scheduling.k8s.io", "v1", False),
    _r("CSIDriver", "csidrivers", "", "storage.k8s.io", "v1", False),
    _r("CSINode", "csinodes", "", "storage.k8s.io", "v1", False),
    _r("CSIStorageCapacity", "csistoragecapacities", "", "storage.k8s.io", "v1"),
    _r("StorageClass", "storageclasses", "sc", "storage.k8s.io", "v1", False),
    _r("VolumeAttachment", "volumeattachments", "", "storage.k8s.io", "v1", False),
    # the multi-cluster Service API ACK One Fleet serves on the hub
    _r("ServiceExport", "serviceexports", "", "multicluster.x-k8s.io", "v1alpha1"),
    _r("ServiceImport", "serviceimports", "", "multicluster.x-k8s.io", "v1alpha1"),
    # KubeVela's own kinds on the hub
    _r("Application", "applications", "app", "core.oam.dev", "v1beta1"),
    _r("ApplicationRevision", "applicationrevisions", "apprev", "core.oam.dev", "v1beta1"),
    _r("ComponentDefinition", "componentdefinitions", "comp", "core.oam.dev", "v1beta1"),
    _r("TraitDefinition", "traitdefinitions", "trait", "core.oam.dev", "v1beta1"),
    _r("PolicyDefinition", "policydefinitions", "def-policy", "core.oam.dev", "v1beta1"),
    _r("WorkflowStepDefinition", "workflowstepdefinitions", "workflowstep", "core.oam.dev", "v1beta1"),
    _r("Policy", "policies", "", "core.oam.dev", "v1alpha1"),
    _r("Workflow", "workflows", "", "core.oam.dev", "v1alpha1"),
)


class ResourceTable:
    """The resources a (fictive) API server serves; `resolve` is its RESTMapper."""

    def __init__(self, resources: Iterable[APIResource] = STOCK) -> None:
        self._all: list[APIResource] = list(resources)

    def all(self) -> list[APIResource]:
        return list(self._all)

    def add(self, res: APIResource) -> None:
        """Add (or replace: same group and plural) a resource; a CRD served later wins."""
        self._all = [r for r in self._all if (r.group, r.plural) != (res.group, res.plural)]
        self._all.append(res)

    def add_crd(self, crd: Mapping[str, Any]) -> None:
        """A CustomResourceDefinition object → its resource (storage version preferred)."""
        spec = crd.get("spec")
        if not isinstance(spec, Mapping):
            return
        names = spec.get("names")
        if not isinstance(names, Mapping) or not names.get("plural") or not names.get("kind"):
            return
        versions = [v for v in spec.get("versions") or [] if isinstance(v, Mapping)]
        served = [v for v in versions if v.get("served", True)]
        stored = [v for v in served if v.get("storage")] or served or versions
        version = str(stored[0].get("name", "v1")) if stored else str(spec.get("version") or "v1")
        short = names.get("shortNames") or []
        self.add(APIResource(
            kind=str(names["kind"]), plural=str(names["plural"]).lower(),
            singular=str(names.get("singular") or names["kind"]).lower(),
            short_names=tuple(str(s).lower() for s in short if isinstance(s, str)),
            group=str(spec.get("group") or ""), version=version, namespaced=spec.get("scope") != "Cluster"))

    def by_kind(self, group: str, kind: str) -> APIResource | None:
        for r in self._all:
            if r.group == group and r.kind == kind:
                return r
        return None

    def matches(self, resource: str, group: str = "") -> list[APIResource]:
        """Every resource named `resource` (plural or singular; else a short name) in `group` (any if empty)."""
        name = resource.strip().lower()
        pool = [r for r in self._all if not group or r.group == group]
        hits = [r for r in pool if name in (r.plural, r.singular)]
        return hits or [r for r in pool if name in r.short_names]

    def resolve(self, resource: str, group: str = "", where: Location | None = None) -> APIResource:
        """The one resource `resource`/`group` means, or a located error (unknown or ambiguous)."""
        hits = self.matches(resource, group)
        groups = sorted({r.group for r in hits})
        if len(groups) > 1 and "" in groups:  # the core group comes first in discovery
            hits = [r for r in hits if r.group == ""]
        elif len(groups) > 1:
            kinds = ", ".join(f"{r.api_version}, Kind={r.kind}" for r in hits)
            raise InputError([Diagnostic(
                f"resource {resource!r} matches multiple kinds [{kinds}]", where or Location(),
                "set `group` to one of " + ", ".join(repr(g) for g in groups))])
        if not hits:
            raise InputError([Diagnostic(
                f"no kind found for resource {resource!r}" + (f" in group {group!r}" if group else ""),
                where or Location(), self._hint(resource, group))])
        return hits[0]

    def _hint(self, resource: str, group: str) -> str:
        name = resource.strip().lower()
        elsewhere = self.matches(name)
        if group and elsewhere:
            return "it is served by group " + ", ".join(repr(r.group) for r in elsewhere)
        names = sorted({n for r in self._all if not group or r.group == group for n in (r.plural, r.singular)})
        close = difflib.get_close_matches(name, names, n=1)
        if close:
            return f"did you mean {close[0]!r}?"
        if group and not any(r.group == group for r in self._all):
            return (f"no resource of group {group!r} is known: put its CustomResourceDefinition in the "
                    "--resources folder")
        return ""
