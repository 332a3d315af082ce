"""velapy.load.refobjects: a folder of hub manifests + a ref-objects component → the objects it distributes.

Pure Python (no engine): hub folders and Applications are written under tmp_path.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from velapy.compile.render import RenderTask
from velapy.errors import EXIT_INVALID, REASON_LIVE_CLUSTER, InputError
from velapy.load.application import Application, load_application
from velapy.load.refobjects import HUB, HubObjects, load_hub, resolve_ref_objects, strip_server_fields

HUB_FILES = {
    "apps/web.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop, uid: u1, resourceVersion: "7", generation: 2,
                   creationTimestamp: "2024-01-01T00:00:00Z", managedFields: [{}], labels: {app: shop}}
        spec: {replicas: 2}
        status: {readyReplicas: 2}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, namespace: shop, labels: {app: shop, tier: back}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api, namespace: other, labels: {app: shop}}
        """,
    "apps/list.yml": """\
        apiVersion: v1
        kind: ConfigMapList
        items:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: b-conf, namespace: shop, labels: {app: shop}}}
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: a-conf, namespace: shop, labels: {app: shop}}}
          - just text
        """,
    "core/svc.yaml": """\
        apiVersion: v1
        kind: Service
        metadata: {name: web, namespace: shop}
        spec: {clusterIP: 10.0.0.7, clusterIPs: [10.0.0.7], ports: [{port: 80}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: headless, namespace: shop}
        spec: {clusterIP: None}
        ---
        a plain string document
        ---
        {noKind: true}
        """,
    "core/ns.json": json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
    "crds/widgets.yaml": """\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.com}
        spec:
          group: example.com
          scope: Cluster
          names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wg]}
          versions: [{name: v2, served: true, storage: true}]
        ---
        apiVersion: example.com/v2
        kind: Widget
        metadata: {name: knob}
        """,
    "notes.txt": "kind: NotAManifest\n",
    "clusters/east/deploy.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: shop, labels: {app: shop}}
        spec: {replicas: 9}
        """,
}


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    for rel, text in HUB_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def hub(hub_dir: Path) -> HubObjects:
    return load_hub(hub_dir)


def names(objs: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in objs]


def ref_app(tmp_path: Path, objects: str, name: str = "web", extra_props: str = "") -> Application:
    """An app (namespace shop) whose first component is ref-objects with `objects` (a YAML list)."""
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(f"""\
        apiVersion: core.oam.dev/v1beta1
        kind: Application
        metadata: {{name: shop, namespace: shop}}
        spec:
          components:
            - name: {name}
              type: ref-objects
              properties:
                {extra_props}
                objects: {objects}
        """), encoding="utf-8")
    return load_application(str(path))


def resolve(app: Application, hub: HubObjects | None) -> list[dict[str, Any]]:
    return resolve_ref_objects(RenderTask(app, app.components[0]), hub)


def failure(app: Application, hub: HubObjects | None) -> list[tuple[str, int, str]]:
    """(message, line, path) of each problem resolve_ref_objects reports."""
    with pytest.raises(InputError) as info:
        resolve(app, hub)
    assert info.value.exit_code == EXIT_INVALID
    assert all(d.location.file.endswith("app.yaml") and d.location.component == "web" for d in info.value.diagnostics)
    return [(d.message, d.location.line, d.location.path) for d in info.value.diagnostics]


# load_hub -----------------------------------------------------------------------------------------

def test_load_hub_reads_every_manifest_by_cluster(hub: HubObjects, hub_dir: Path) -> None:
    assert hub.root == str(hub_dir)
    assert sorted(hub.objects) == sorted([HUB, "east"])
    # files in sorted order, documents in file order, List items unpacked, non-objects and .txt skipped
    assert names(hub.objects[HUB]) == [
        "ConfigMap shop/b-conf", "ConfigMap shop/a-conf",
        "Deployment shop/web", "Deployment shop/api", "Deployment other/api",
        "Namespace /shop", "Service shop/web", "Service shop/headless",
        "CustomResourceDefinition /widgets.example.com", "Widget /knob"]
    assert [o["spec"]["replicas"] for o in hub.objects["east"]] == [9]


def test_a_crd_in_the_folder_teaches_its_resource(hub: HubObjects) -> None:
    widget = hub.resources.resolve("wg")
    assert (widget.kind, widget.group, widget.version, widget.namespaced) == ("Widget", "example.com", "v2", False)
    assert hub.namespaced("example.com", "Widget") is False
    assert hub.namespaced("apps", "Deployment") is True
    assert hub.namespaced("unknown.io", "Thing") is True  # unknown kinds are taken as namespaced


def test_load_hub_of_a_missing_folder_or_a_file_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "file.yaml").write_text("a: 1\n")
    for bad in (tmp_path / "missing", tmp_path / "file.yaml"):
        with pytest.raises(InputError) as info:
            load_hub(bad)
        (d,) = info.value.diagnostics
        assert info.value.exit_code == EXIT_INVALID
        assert d.message == f"--resources: {str(bad)!r} is not a directory" and d.location.file == str(bad)


def test_load_hub_reports_bad_yaml_with_its_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "bad.yaml").write_text("kind: ConfigMap\nmetadata: {name: x\n")
    with pytest.raises(InputError) as info:
        load_hub(tmp_path / "hub")
    d = info.value.diagnostics[0]
    assert info.value.exit_code == EXIT_INVALID
    assert d.location.file == str(tmp_path / "hub" / "bad.yaml") and d.location.line >= 2


# strip_server_fields ------------------------------------------------------------------------------

def test_strip_server_fields_returns_a_clean_copy(hub: HubObjects) -> None:
    web = hub.objects[HUB][2]
    clean = strip_server_fields(web)
    assert clean == {"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "shop"}},
                     "spec": {"replicas": 2}}
    assert web["metadata"]["uid"] == "u1" and web["status"] == {"readyReplicas": 2}  # the original is unchanged
    svc, headless = (o for o in hub.objects[HUB] if o["kind"] == "Service")
    assert strip_server_fields(svc)["spec"] == {"ports": [{"port": 80}]}  # an allocated IP is the server's
    assert strip_server_fields(headless)["spec"] == {"clusterIP": "None"}  # headless is the user's choice
    assert strip_server_fields({"kind": "X", "metadata": None}) == {"kind": "X", "metadata": None}


# resolve_ref_objects ------------------------------------------------------------------------------

def test_the_name_defaults_to_the_component_and_the_namespace_to_the_app(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: deployment}, {resource: svc, name: headless}]")
    out = resolve(app, hub)
    assert names(out) == ["Deployment shop/web", "Service shop/headless"]
    assert "uid" not in out[0]["metadata"] and "status" not in out[0]


def test_an_explicit_namespace_and_the_older_apiversion_kind_form(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{apiVersion: apps/v1, kind: Deployment, name: api, namespace: other}]")
    assert names(resolve(app, hub)) == ["Deployment other/api"]
    # the version is part of the match in this form
    app = ref_app(tmp_path, "[{apiVersion: apps/v1beta1, kind: Deployment, name: api}]")
    ((message, _line, _path),) = failure(app, hub)
    assert message == f"failed to load ref object Deployment shop/api: not found in --resources {hub.root}"


def test_a_label_selector_lists_sorted_by_namespace_and_name(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: configmap, labelSelector: {app: shop}}, "
                            "{resource: deployments, selector: {app: shop}, namespace: shop}]")
    assert names(resolve(app, hub)) == ["ConfigMap shop/a-conf", "ConfigMap shop/b-conf",
                                        "Deployment shop/api", "Deployment shop/web"]
    app = ref_app(tmp_path, "[{resource: deployment, labelSelector: {tier: back, app: shop}}]")
    assert names(resolve(app, hub)) == ["Deployment shop/api"]
    app = ref_app(tmp_path, "[{resource: deployment, labelSelector: {tier: none}}]")
    assert resolve(app, hub) == []  # an empty list is a valid answer, not an error


def test_cluster_scoped_kinds_ignore_the_namespace(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: namespaces, name: shop, namespace: elsewhere}, "
                            "{resource: widget, name: knob}]")
    assert names(resolve(app, hub)) == ["Namespace /shop", "Widget /knob"]


def test_objects_of_a_member_cluster(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: deployment, cluster: east}]")
    (obj,) = resolve(app, hub)
    assert obj["spec"] == {"replicas": 9}
    app = ref_app(tmp_path, "[{resource: deployment, cluster: west}]")
    assert failure(app, hub) == [(f"no objects of cluster 'west' in --resources (expected under "
                                  f"{hub.root}/clusters/west/)", 10, "spec.components[0].properties.objects[0]")]


def test_the_same_object_twice_is_kept_once_where_it_first_appeared(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: deployment, labelSelector: {app: shop}}, {resource: svc}, "
                            "{resource: deployment, name: api}]")
    assert names(resolve(app, hub)) == ["Deployment shop/api", "Deployment shop/web", "Service shop/web"]


def test_every_bad_selector_is_reported_at_its_own_position(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[{resource: deployment, name: x, labelSelector: {a: b}}, just-a-string, "
                            "{name: web}, {resource: gizmo}, {resource: deployment, name: ghost}, "
                            "{resource: deployment, labelSelector: [a]}]")
    at = "spec.components[0].properties.objects"
    assert failure(app, hub) == [
        ("invalid object selector for ref-objects, name and labelSelector cannot be both set", 10, f"{at}[0]"),
        ("an object selector must be a mapping", 10, f"{at}[1]"),
        ("neither resource nor apiVersion/kind is set for the referred objects", 10, f"{at}[2]"),
        ("no kind found for resource 'gizmo'", 10, f"{at}[3]"),
        (f"failed to load ref object Deployment shop/ghost: not found in --resources {hub.root}", 10, f"{at}[4]"),
        ("labelSelector must be a map of label values", 10, f"{at}[5]"),
    ]


def test_urls_cannot_be_fetched_offline(tmp_path: Path, hub: HubObjects) -> None:
    app = ref_app(tmp_path, "[]", extra_props="urls: [https://example.invalid/x.yaml]")
    assert failure(app, hub) == [("ref-objects `urls` cannot be fetched offline; put the objects in --resources",
                                  9, "spec.components[0].properties.urls")]


def test_without_a_hub_the_error_asks_for_resources(tmp_path: Path) -> None:
    app = ref_app(tmp_path, "[{resource: deployment}]")
    with pytest.raises(InputError) as info:
        resolve(app, None)
    (d,) = info.value.diagnostics
    assert d.message.startswith("ref-objects needs the hub's objects: pass --resources DIR")
    assert d.reason == REASON_LIVE_CLUSTER
    # a selector that is wrong anyway is reported as such, not as missing input
    app = ref_app(tmp_path, "[{resource: gizmo}]")
    assert [m for m, _line, _path in failure(app, None)] == ["no kind found for resource 'gizmo'"]
    assert resolve(ref_app(tmp_path, "[]"), None) == []
