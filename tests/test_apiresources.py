"""The resource table: names a RESTMapper accepts, groups searched, ambiguity, CRDs."""

from __future__ import annotations

import pytest

from velapy.errors import InputError
from velapy.load.apiresources import ResourceTable


@pytest.mark.parametrize(("name", "group", "kind", "api_version"), [
    ("deployment", "", "Deployment", "apps/v1"),
    ("deployments", "apps", "Deployment", "apps/v1"),
    ("Deployment", "", "Deployment", "apps/v1"),
    ("deploy", "", "Deployment", "apps/v1"),
    ("svc", "", "Service", "v1"),
    ("cm", "", "ConfigMap", "v1"),
    ("hpa", "", "HorizontalPodAutoscaler", "autoscaling/v2"),
    ("pvc", "", "PersistentVolumeClaim", "v1"),
    ("ing", "", "Ingress", "networking.k8s.io/v1"),
    ("sts", "", "StatefulSet", "apps/v1"),
    ("ds", "", "DaemonSet", "apps/v1"),
    ("cj", "", "CronJob", "batch/v1"),
    ("ns", "", "Namespace", "v1"),
    ("sa", "", "ServiceAccount", "v1"),
    ("secret", "", "Secret", "v1"),
    ("events", "", "Event", "v1"),  # core wins over events.k8s.io
    ("events", "events.k8s.io", "Event", "events.k8s.io/v1"),
    ("serviceexport", "", "ServiceExport", "multicluster.x-k8s.io/v1alpha1"),
])
def test_resolves_like_a_restmapper(name: str, group: str, kind: str, api_version: str) -> None:
    got = ResourceTable().resolve(name, group)
    assert (got.kind, got.api_version) == (kind, api_version)


def test_namespaced() -> None:
    t = ResourceTable()
    assert not t.resolve("ns").namespaced and t.resolve("deploy").namespaced
    assert t.by_kind("rbac.authorization.k8s.io", "ClusterRole") is not None


def test_unknown_and_wrong_group_have_hints() -> None:
    with pytest.raises(InputError) as exc:
        ResourceTable().resolve("deployments", "batch")
    assert "no kind found for resource 'deployments' in group 'batch'" in exc.value.render()
    assert "served by group 'apps'" in exc.value.render()
    with pytest.raises(InputError) as exc:
        ResourceTable().resolve("deploymnts")
    assert "did you mean 'deployments'" in exc.value.render()


def crd(group: str, plural: str, kind: str, short: list[str] | None = None, scope: str = "Namespaced",
        versions: list[dict[str, object]] | None = None) -> dict[str, object]:
    names: dict[str, object] = {"kind": kind, "plural": plural}
    if short:
        names["shortNames"] = short
    return {"kind": "CustomResourceDefinition",
            "spec": {"group": group, "scope": scope, "names": names,
                     "versions": versions or [{"name": "v1", "served": True, "storage": True}]}}


def test_crds_extend_the_table_and_can_be_ambiguous() -> None:
    t = ResourceTable()
    t.add_crd(crd("cert-manager.io", "certificates", "Certificate", ["cert"]))
    assert t.resolve("cert").api_version == "cert-manager.io/v1"
    assert t.resolve("certificate").kind == "Certificate"  # singular defaults to the lower-case kind
    t.add_crd(crd("acme.example.com", "certificates", "Certificate", scope="Cluster",
                  versions=[{"name": "v1beta1", "served": True}, {"name": "v2", "served": True, "storage": True}]))
    with pytest.raises(InputError) as exc:
        t.resolve("certificates")
    assert "matches multiple kinds" in exc.value.render() and "set `group`" in exc.value.render()
    other = t.resolve("certificates", "acme.example.com")
    assert other.version == "v2" and not other.namespaced
