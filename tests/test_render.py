"""render + dryrun, end to end through the engine: trait patch tags, outputs, errs, labels, the stream format."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from velapy.bundle.dryrun import dry_run_blocks, format_blocks
from velapy.cue.engine import Evaluator
from velapy.errors import InputError
from velapy.load.application import load_application
from velapy.load.definitions import load_registry
from velapy.pipeline import Inputs, load

BASE = '''
base: {type: "component", description: "test base"}
template: {
	output: {
		apiVersion: "apps/v1"
		kind: "Deployment"
		metadata: {name: context.name, labels: fromTemplate: "t"}
		spec: {
			selector: matchLabels: "app.oam.dev/component": context.name
			template: spec: containers: [{name: context.name, image: "nginx", env: [{name: "A", value: "1"}]}]
		}
	}
	outputs: cm: {apiVersion: "v1", kind: "ConfigMap", metadata: name: context.name + "-cm", data: a: "1"}
	parameter: {}
}
'''

TRAITS = {
    "append-by-key": '''
	patch: {
		// +patchKey=name
		spec: template: spec: containers: [{name: "log", image: "fluentd"}]
	}''',
    "merge-inherited": '''
	patch: spec: template: spec: {
		// +patchKey=name
		containers: [{name: context.name, env: [{name: "B", value: "2"}]}]
	}''',
    "conflict": '''
	patch: spec: template: spec: {
		// +patchKey=name
		containers: [{name: context.name, env: [{name: "A", value: "9"}]}]
	}''',
    "retain-list": '''
	patch: spec: template: spec: {
		// +patchKey=name
		containers: [{
			name: context.name
			// +patchStrategy=retainKeys
			env: [{name: "A", value: "9"}]
		}]
	}''',
    "replace-list": '''
	patch: spec: template: spec: {
		// +patchKey=name
		containers: [{
			name: context.name
			// +patchStrategy=replace
			env: [{name: "C", value: "3"}]
		}]
	}''',
    "merge-patch": '''
	// +patchStrategy=jsonMergePatch
	patch: {
		metadata: labels: {fromTemplate: null, team: parameter.team}
	}
	parameter: team: string''',
    "json-ops": '''
	// +patchStrategy=jsonPatch
	patch: {
		operations: [{op: "replace", path: "/spec/selector", value: {matchLabels: x: "y"}}]
	}''',
    "reads-output": '''
	outputs: svc: {
		apiVersion: "v1"
		kind: "Service"
		metadata: name: context.output.metadata.name + "-svc"
		spec: selector: context.output.spec.selector.matchLabels
	}''',
    "patch-outputs": '''
	patchOutputs: cm: data: b: "2"''',
    "each-container": '''
	patch: spec: template: spec: containers: [...{securityContext: runAsNonRoot: true}]''',
    "untagged-conflict": '''
	patch: spec: selector: matchLabels: "app.oam.dev/component": "other"''',
    "user-error": '''
	errs: ["replicas must be even"]''',
    "set-label": '''
	parameter: {key: string, value: *"on" | string}
	patch: metadata: labels: "\\(parameter.key)": parameter.value''',
    "set-replicas": '''
	parameter: count: int
	patch: spec: replicas: parameter.count''',
    "default-replicas": '''
	patch: spec: replicas: *1 | int''',
    "tagged-replicas": '''
	parameter: count: int
	patch: spec: {
		// +patchStrategy=retainKeys
		replicas: parameter.count
	}''',
    "reads-replicas": '''
	parameter: tag: string
	outputs: "seen-\\(parameter.tag)": {
		apiVersion: "v1"
		kind: "ConfigMap"
		metadata: name: "seen-\\(parameter.tag)"
		data: replicas: "\\(context.output.spec.replicas)"
	}''',
    "label-if-no-replicas": '''
	if context.output.spec.replicas == _|_ {
		patch: metadata: labels: unscaled: "yes"
	}''',
    "add-container": '''
	patch: spec: template: spec: containers: [{}, {name: "extra", image: "busybox"}]''',
}


@pytest.fixture(scope="module")
def defs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("defs")
    (d / "base.cue").write_text(BASE)
    for name, body in TRAITS.items():
        (d / f"{name}.cue").write_text(f'"{name}": {{type: "trait"}}\ntemplate: {{{body}\n}}\n')
    return d


def app_file(tmp_path: Path, traits: list[dict[str, Any]], extra: str = "") -> str:
    import yaml
    doc = {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
           "metadata": {"name": "demo", "namespace": "ns1", "labels": {"team": "x"},
                        "annotations": {"note": "note-1", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
           "spec": {"components": [{"name": "web", "type": "base", "traits": traits}]}}
    p = tmp_path / "app.yaml"
    p.write_text(yaml.safe_dump(doc) + extra)
    return str(p)


def render_one(tmp_path: Path, defs: Path, evaluator: Evaluator, traits: list[dict[str, Any]]) -> list[Any]:
    loaded = load(Inputs(app_file(tmp_path, traits), definition_dirs=(str(defs),)))
    _w, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub)
    return blocks[0].manifests[0].objects()


def containers(objs: list[Any]) -> Any:
    return objs[0].obj["spec"]["template"]["spec"]["containers"]


def test_append_by_key(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "append-by-key"}])
    assert [c["name"] for c in containers(objs)] == ["web", "log"]


def test_merge_by_inherited_key(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "merge-inherited"}])
    assert containers(objs)[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_conflict_is_a_located_error(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    with pytest.raises(InputError) as info:
        render_one(tmp_path, defs, evaluator, [{"type": "conflict"}])
    text = info.value.render()
    assert "invalid patch trait conflict into workload" in text
    assert "conflicting values" in text and "(component web, trait conflict)" in text


def test_retain_keys_and_replace(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "retain-list"}])
    assert containers(objs)[0]["env"] == [{"name": "A", "value": "9"}]
    objs = render_one(tmp_path, defs, evaluator, [{"type": "replace-list"}])
    assert containers(objs)[0]["env"] == [{"name": "C", "value": "3"}]


def test_untagged_patch_is_unified_by_cue_with_element_constraints(tmp_path: Path, defs: Path,
                                                                    evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "append-by-key"}, {"type": "each-container"}])
    assert [c["securityContext"] for c in containers(objs)] == [{"runAsNonRoot": True}] * 2
    with pytest.raises(InputError) as info:
        render_one(tmp_path, defs, evaluator, [{"type": "untagged-conflict"}])
    text = info.value.render()
    assert "invalid patch trait untagged-conflict into workload" in text and "conflicting values" in text


def test_json_strategies(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "merge-patch", "properties": {"team": "a"}},
                                                   {"type": "json-ops"}])
    labels = objs[0].obj["metadata"]["labels"]
    assert "fromTemplate" not in labels and labels["team"] == "x"  # app label wins over the template's
    assert objs[0].obj["spec"]["selector"] == {"matchLabels": {"x": "y"}}


def test_trait_reads_patched_output_and_patches_outputs(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [{"type": "json-ops"}, {"type": "reads-output"},
                                                   {"type": "patch-outputs"}])
    assert [(o.role, o.trait, o.resource) for o in objs] == [
        ("workload", "", ""), ("auxiliary", "AuxiliaryWorkload", "cm"), ("trait", "reads-output", "svc")]
    assert objs[2].obj["spec"]["selector"] == {"x": "y"}
    assert objs[1].obj["data"] == {"a": "1", "b": "2"}


def test_oam_contract(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs = render_one(tmp_path, defs, evaluator, [])
    w, cm = objs[0].obj, objs[1].obj
    assert w["metadata"]["labels"] == {
        "fromTemplate": "t", "team": "x", "app.oam.dev/name": "demo", "app.oam.dev/namespace": "ns1",
        "app.oam.dev/component": "web", "app.oam.dev/appRevision": "", "app.oam.dev/resourceType": "WORKLOAD",
        "workload.oam.dev/type": "base"}
    assert w["metadata"]["annotations"] == {"note": "note-1"}
    assert w["metadata"]["name"] == "web" and w["metadata"]["namespace"] == "ns1"
    assert cm["metadata"]["labels"]["trait.oam.dev/type"] == "AuxiliaryWorkload"
    assert cm["metadata"]["labels"]["trait.oam.dev/resource"] == "cm"
    assert cm["metadata"]["labels"]["app.oam.dev/resourceType"] == "TRAIT"


def test_errs_and_unknown_trait(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    with pytest.raises(InputError, match="replicas must be even"):
        render_one(tmp_path, defs, evaluator, [{"type": "user-error"}])
    with pytest.raises(InputError) as info:
        render_one(tmp_path, defs, evaluator, [{"type": "append-by-kye"}])
    assert 'did you mean "append-by-key"?' in info.value.render()
    assert "app.yaml:" in info.value.render()


def test_engine_calls_grow_with_trait_depth_not_components(tmp_path: Path, defs: Path,
                                                           evaluator: Evaluator) -> None:
    import yaml
    comps = [{"name": f"c{i}", "type": "base", "traits": [{"type": "append-by-key"}, {"type": "reads-output"}]}
             for i in range(30)]
    doc = {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "many"},
           "spec": {"components": comps}}
    (tmp_path / "many.yaml").write_text(yaml.safe_dump(doc))
    loaded = load(Inputs(str(tmp_path / "many.yaml"), definition_dirs=(str(defs),)))
    before = evaluator.calls
    _w, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub)
    assert len(blocks[0].manifests) == 30
    assert evaluator.calls - before <= 3  # component round + two trait rounds


def test_dry_run_stream_layout(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    loaded = load(Inputs(app_file(tmp_path, [{"type": "reads-output"}]), definition_dirs=(str(defs),)))
    text = format_blocks(*dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub))
    assert text.startswith("---\n# Application(demo) -- Component(web)\n---\n\napiVersion: apps/v1\nkind: Deployment\n")
    assert "\n---\n## From the auxiliary workload\napiVersion: v1\ndata:\n  a: \"1\"\nkind: ConfigMap\n" in text
    assert "\n---\n## From the trait reads-output\napiVersion: v1\nkind: Service\n" in text
    assert text.endswith("\n---\n\n")
    assert text == format_blocks(*dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub))


def test_builtins_load(registry: Any) -> None:
    assert {"webservice", "worker", "task", "k8s-objects", "ref-objects"} <= set(registry.names("component"))
    assert textwrap.dedent("x") == "x"
    assert load_registry() is not None


def test_all_problems_of_a_round_are_reported_together(tmp_path: Path, evaluator: Evaluator) -> None:
    import yaml
    doc = {"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "metadata": {"name": "bad"},
           "spec": {"components": [
               {"name": "web", "type": "webservice", "properties": {"image": 3, "ports": [{"port": "80"}]}},
               {"name": "w2", "type": "webservice", "properties": {"image": "x", "cpu": 1}},
               {"name": "w3", "type": "webservic"},
               {"name": "w4", "type": "webservice", "properties": {"image": "x"},
                "traits": [{"type": "scaler", "properties": {"replicas": "two"}}]}]}}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    # the render stage's own reporting: past validation, which would stop these earlier
    registry = load_registry()
    with pytest.raises(InputError) as info:
        dry_run_blocks(load_application(str(tmp_path / "app.yaml")), registry, evaluator)
    by_path = {d.location.path: d for d in info.value.diagnostics}
    assert set(by_path) == {"spec.components[2].type", "spec.components[0].properties.image",
                            "spec.components[0].properties.ports[0].port", "spec.components[1].properties.cpu"}
    assert by_path["spec.components[2].type"].hint == 'did you mean "webservice"?'
    assert by_path["spec.components[0].properties.image"].location.line > 0
    # the trait round is not reached while components fail; once they are fixed, the trait error shows
    doc["spec"]["components"] = doc["spec"]["components"][3:]  # type: ignore[index]
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(InputError) as info:
        dry_run_blocks(load_application(str(tmp_path / "app.yaml")), registry, evaluator)
    (diag,) = info.value.diagnostics
    assert diag.location.path == "spec.components[0].traits[0].properties.replicas"
    assert diag.location.trait == "scaler" and "no allowed value matches" in diag.message


# ----------------------------------------------------------------------------------------------
# trait rounds: traits that do not depend on each other are evaluated in one engine round


def render_counted(tmp_path: Path, defs: Path, evaluator: Evaluator,
                   traits: list[dict[str, Any]]) -> tuple[list[Any], int]:
    loaded = load(Inputs(app_file(tmp_path, traits), definition_dirs=(str(defs),)))
    before = evaluator.calls
    _w, blocks = dry_run_blocks(loaded.app, loaded.registry, evaluator, loaded.hub)
    return [o.obj for o in blocks[0].manifests[0].objects()], evaluator.calls - before


def one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make render evaluate one trait per round, as it did before traits were grouped."""
    from velapy.compile import render
    group = render._group

    def single(s: Any, registry: Any) -> Any:
        s.careful_until = len(s.task.component.traits)
        return group(s, registry)
    monkeypatch.setattr(render, "_group", single)


def label(i: int) -> dict[str, Any]:
    return {"type": "set-label", "properties": {"key": f"k{i}"}}


def test_fifty_untagged_patches_take_one_round(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    objs, calls = render_counted(tmp_path, defs, evaluator, [label(i) for i in range(50)])
    assert calls == 2  # the component round and one trait round (was 51)
    assert {f"k{i}" for i in range(50)} <= set(objs[0]["metadata"]["labels"])


def test_untagged_and_tagged_mixed_take_one_round(tmp_path: Path, defs: Path, evaluator: Evaluator) -> None:
    traits = [t for i in range(20) for t in (label(i), {"type": "tagged-replicas", "properties": {"count": i + 1}})]
    objs, calls = render_counted(tmp_path, defs, evaluator, traits)
    assert calls == 2
    assert objs[0]["spec"]["replicas"] == 20  # retainKeys: the last trait wins


SEQUENCES = {
    "tags, readers and outputs": [{"type": "append-by-key"}, {"type": "each-container"}, {"type": "merge-inherited"},
                                  {"type": "reads-output"}, {"type": "patch-outputs"}, {"type": "json-ops"}],
    "constraint first": [{"type": "each-container"}, label(1), {"type": "add-container"}, {"type": "append-by-key"}],
    "merge patch between labels": [{"type": "merge-patch", "properties": {"team": "a"}}, label(1),
                                   {"type": "each-container"}, label(2), {"type": "reads-output"},
                                   {"type": "merge-patch", "properties": {"team": "b"}}],
    "a reader first, then what it reads": [{"type": "label-if-no-replicas"},
                                           {"type": "set-replicas", "properties": {"count": 3}},
                                           {"type": "label-if-no-replicas"}],
    "readers after patches": [t for i in range(6) for t in (
        label(i), {"type": "tagged-replicas", "properties": {"count": i + 2}},
        {"type": "reads-replicas", "properties": {"tag": f"r{i}"}},
        {"type": "set-replicas", "properties": {"count": i + 2}})],
}


@pytest.mark.parametrize("name", list(SEQUENCES))
def test_grouped_render_equals_one_trait_per_round(name: str, tmp_path: Path, defs: Path, evaluator: Evaluator,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    grouped, calls = render_counted(tmp_path, defs, evaluator, SEQUENCES[name])
    one_by_one(monkeypatch)
    sequential, seq_calls = render_counted(tmp_path, defs, evaluator, SEQUENCES[name])
    assert grouped == sequential
    assert seq_calls == len(SEQUENCES[name]) + 1 and calls <= seq_calls


def test_reader_sees_the_workload_the_traits_before_it_patched(tmp_path: Path, defs: Path,
                                                                evaluator: Evaluator) -> None:
    traits = [{"type": "set-replicas", "properties": {"count": 3}},
              {"type": "reads-replicas", "properties": {"tag": "a"}},
              {"type": "tagged-replicas", "properties": {"count": 5}},
              {"type": "reads-replicas", "properties": {"tag": "b"}}]
    objs, _calls = render_counted(tmp_path, defs, evaluator, traits)
    seen = {o["metadata"]["name"]: o["data"]["replicas"] for o in objs if o["metadata"]["name"].startswith("seen-")}
    assert seen == {"seen-a": "3", "seen-b": "5"}
    assert objs[0]["spec"]["replicas"] == 5


def test_element_constraints_do_not_reach_what_later_traits_add(tmp_path: Path, defs: Path,
                                                                 evaluator: Evaluator) -> None:
    objs, _calls = render_counted(tmp_path, defs, evaluator, [{"type": "each-container"}, {"type": "add-container"}])
    assert [c.get("securityContext") for c in objs[0]["spec"]["template"]["spec"]["containers"]] == [
        {"runAsNonRoot": True}, None]


@pytest.mark.parametrize("traits", [
    [{"type": "set-replicas", "properties": {"count": 2}}, label(1),
     {"type": "set-replicas", "properties": {"count": 3}}],
    [{"type": "default-replicas"}, {"type": "set-replicas", "properties": {"count": 3}}],
    [{"type": "tagged-replicas", "properties": {"count": 2}}, {"type": "set-replicas", "properties": {"count": 3}}],
])
def test_conflicts_are_reported_as_one_trait_per_round_reports_them(
        traits: list[dict[str, Any]], tmp_path: Path, defs: Path, evaluator: Evaluator,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError) as grouped:
        render_counted(tmp_path, defs, evaluator, traits)
    one_by_one(monkeypatch)
    with pytest.raises(InputError) as sequential:
        render_counted(tmp_path, defs, evaluator, traits)
    assert grouped.value.render() == sequential.value.render()
    assert f"traits[{len(traits) - 1}]" in grouped.value.render() or "(component web, trait set-replicas)" in \
        grouped.value.render()


KUBE_IMPORT_DEF = """apiVersion: core.oam.dev/v1beta1
kind: ComponentDefinition
metadata:
  name: myworker
spec:
  schematic:
    cue:
      template: |
        import (
            apps "kube/apps/v1"
        )
        output: apps.#Deployment
        output: spec: replicas: 1
        parameter: image: string
---
apiVersion: core.oam.dev/v1beta1
kind: TraitDefinition
metadata:
  name: myingress
spec:
  schematic:
    cue:
      template: |
        import (
            kube "kube/v1"
        )
        outputs: service: kube.#Service
        parameter: {}
"""


def test_a_kube_package_import_needs_a_live_cluster(tmp_path: Path, evaluator: Evaluator) -> None:
    """KubeVela generates `kube/<group>/<version>` packages from a cluster's OpenAPI schema (KubeVela's
    docs/examples/dry-run): said so, at the component's type, as a live-cluster need, not as the
    engine's raw `"kube/apps/v1".#Deployment undefined`."""
    from velapy.errors import REASON_LIVE_CLUSTER
    (tmp_path / "myworker.yaml").write_text(KUBE_IMPORT_DEF)
    (tmp_path / "app.yaml").write_text("apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\n"
                                       "spec:\n  components:\n    - name: web\n      type: myworker\n"
                                       "      properties: {image: busybox}\n      traits: [{type: myingress}]\n")
    loaded = load(Inputs(str(tmp_path / "app.yaml"), definition_dirs=(str(tmp_path / "myworker.yaml"),)))
    with pytest.raises(InputError) as err:
        dry_run_blocks(loaded.app, loaded.registry, evaluator)
    text = err.value.render()
    assert "app.yaml:7:13: spec.components[0].type: component definition myworker imports kube/apps/v1, a package " \
           "KubeVela generates from a live cluster's OpenAPI schema" in text
    assert "app.yaml:9:23: spec.components[0].traits[0].type: trait definition myingress imports kube/v1" in text
    assert "undefined" not in text
    assert [d.reason for d in err.value.diagnostics] == [REASON_LIVE_CLUSTER] * 2
