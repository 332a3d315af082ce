"""The multi-cluster compile: workflow → placements → one render → member objects, rules and checks."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from velapy.bundle.dryrun import dry_run_blocks, format_blocks
from velapy.bundle.emit import render_folder
from velapy.compile.plan import Plan, PlannedObject, build_plan, digest_of, selector_matches
from velapy.compile.workflow import check_workflow, is_go_duration, resolve_workflow
from velapy.cue.engine import Evaluator
from velapy.errors import InputError
from velapy.load.application import load_application
from velapy.load.clusters import Inventory, load_inventory
from velapy.load.definitions import Registry
from velapy.pipeline import Inputs, compile_app

CLUSTERS = """\
clusters:
  - name: bj
    labels: {env: prod, region: bj}
    version: "1.28"
  - name: hz
    labels: {env: prod, region: hz}
    version: "1.20"
  - name: dev
    labels: {env: dev}
"""

HEADER = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: app
  namespace: ns
spec:
"""

PROBE = """\
probe: {
	type:        "component"
	description: "Echoes the context a placement renders with."
	attributes: workload: definition: {apiVersion: "v1", kind: "ConfigMap"}
}

template: {
	output: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		metadata: name: context.name
		data: {
			cluster:   context.cluster
			namespace: context.namespace
			minor:     "\\(context.clusterVersion.minor)"
		}
	}
	parameter: {}
}
"""


def D(text: str) -> str:
    return textwrap.dedent(text)


def app_yaml(tmp_path: Path, spec: str, name: str = "app.yaml") -> str:
    p = tmp_path / name
    p.write_text(HEADER + textwrap.indent(textwrap.dedent(spec), "  "), encoding="utf-8")
    return str(p)


def clusters_yaml(tmp_path: Path, text: str = CLUSTERS) -> str:
    p = tmp_path / "clusters.yaml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def compile_(tmp_path: Path, spec: str, evaluator: Evaluator, registry: Registry | None = None,
             **kw: Any) -> Plan:
    inputs = Inputs(app_yaml(tmp_path, spec), clusters=clusters_yaml(tmp_path), **kw)
    return compile_app(inputs, evaluator, registry)


def objects(plan: Plan, cluster: str) -> dict[str, PlannedObject]:
    return {f"{o.kind}/{o.namespace}/{o.name}": o for o in plan.bundles()[cluster]}


WEB = """\
components:
  - name: web
    type: webservice
    properties: {image: "nginx:1.25"}
    traits:
      - type: scaler
        properties: {replicas: 2}
"""


def test_context_of_each_placement(tmp_path: Path, evaluator: Evaluator) -> None:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "probe.cue").write_text(PROBE, encoding="utf-8")
    plan = compile_(tmp_path, """\
        components:
          - name: probe
            type: probe
        policies:
          - name: prod
            type: topology
            properties: {clusterLabelSelector: {env: prod}, namespace: moved}
          - name: dev
            type: topology
            properties: {clusters: [dev, local]}
        """, evaluator, definition_dirs=(str(defs),))
    data = {o.cluster: o.obj["data"] for s in plan.steps for o in s.objects()}
    assert data["bj"] == {"cluster": "bj", "namespace": "moved", "minor": "28"}
    assert data["hz"] == {"cluster": "hz", "namespace": "moved", "minor": "20"}
    assert data["dev"] == {"cluster": "dev", "namespace": "ns", "minor": "0"}  # no version, hub's unknown
    assert data["local"] == {"cluster": "local", "namespace": "ns", "minor": "0"}
    assert objects(plan, "bj")["ConfigMap/moved/probe"].obj["metadata"]["labels"]["app.oam.dev/cluster"] == "bj"


def test_engine_calls_grow_with_trait_rounds_not_clusters(tmp_path: Path, evaluator: Evaluator,
                                                         registry: Registry) -> None:
    spec = """\
        components:
          - name: web
            type: webservice
            properties: {image: "nginx:1.25", cpu: "1"}
            traits:
              - type: scaler
                properties: {replicas: 2}
              - type: hpa
                properties: {max: 5, cpu: {value: 80}}
          - name: worker
            type: worker
            properties: {image: "busybox:1"}
        policies:
          - name: everywhere
            type: topology
            properties: {clusterLabelSelector: {fleet: "yes"}}
        """
    app = load_application(app_yaml(tmp_path, spec))
    calls = {}
    for n in (1, 4, 16):
        inv_text = "clusters:\n" + "".join(
            f"  - name: c{i}\n    labels: {{fleet: \"yes\"}}\n    version: \"1.{20 + i % 10}\"\n" for i in range(n))
        inv = load_inventory(clusters_yaml(tmp_path, inv_text))
        before = evaluator.calls
        plan = build_plan(app, registry, evaluator, inv)
        calls[n] = evaluator.calls - before
        assert len(plan.bundles()) == n
        assert sum(len(v) for v in plan.bundles().values()) == 3 * n  # Deployment, HPA, worker
    assert calls[1] == calls[4] == calls[16] == 2  # components, then scaler and hpa together (independent)


def test_cluster_scoped_objects_lose_the_namespace(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, """\
        components:
          - name: base
            type: k8s-objects
            properties:
              objects:
                - {apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {a: "1"}}
                - {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: reader}, rules: []}
                - {apiVersion: v1, kind: Namespace, metadata: {name: team}}
        policies:
          - name: bj
            type: topology
            properties: {clusters: [bj], namespace: team}
        """, evaluator)
    objs = objects(plan, "bj")
    assert set(objs) == {"ConfigMap/team/settings", "ClusterRole//reader", "Namespace//team"}
    files = render_folder(plan)
    assert "clusters/bj/_cluster/clusterrole_reader.yaml" in files
    assert "clusters/bj/team/configmap_settings.yaml" in files
    assert "namespace" not in objs["Namespace//team"].obj["metadata"]
    assert "\n  namespace:" not in files["clusters/bj/_cluster/namespace_team.yaml"]


def test_template_cluster_label_redirects_the_object(tmp_path: Path, evaluator: Evaluator) -> None:
    spec = """\
        components:
          - name: base
            type: k8s-objects
            properties:
              objects:
                - {apiVersion: v1, kind: ConfigMap, metadata: {name: here}}
                - apiVersion: v1
                  kind: ConfigMap
                  metadata: {name: there, labels: {app.oam.dev/cluster: %s}}
        policies:
          - name: bj
            type: topology
            properties: {clusters: [bj]}
        """
    plan = compile_(tmp_path, spec % "hz", evaluator)
    assert set(objects(plan, "bj")) == {"ConfigMap/ns/here"}
    assert set(objects(plan, "hz")) == {"ConfigMap/ns/there"}
    assert [c.name for c in plan.clusters] == ["bj", "hz"]
    with pytest.raises(InputError, match="labelled app.oam.dev/cluster: mars, which is not in the cluster"):
        compile_(tmp_path, spec % "mars", evaluator)


def test_resource_policies_become_object_rules(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
          - name: cfg
            type: k8s-objects
            properties:
              objects:
                - {apiVersion: v1, kind: ConfigMap, metadata: {name: shared-cfg}}
                - {apiVersion: v1, kind: Secret, metadata: {name: creds}}
        policies:
          - name: once-a
            type: apply-once
            properties:
              enable: true
              rules:
                - selector: {componentNames: [web], resourceTypes: [Deployment]}
                  strategy: {path: [spec.replicas], affect: onStateKeep}
          - name: once-b
            type: apply-once
            properties:
              rules:
                - selector: {resourceTypes: [Secret]}
                  strategy: {path: ["*"]}
          - name: gc
            type: garbage-collect
            properties:
              keepLegacyResource: true
              rules:
                - selector: {resourceNames: [creds]}
                  strategy: never
                  propagation: orphan
          - {name: share, type: shared-resource, properties: {rules: [{selector: {resourceNames: [shared-cfg]}}]}}
          - {name: adopt, type: take-over, properties: {rules: [{selector: {componentNames: [cfg]}}]}}
          - {name: ro, type: read-only, properties: {rules: [{selector: {resourceTypes: [Secret]}}]}}
          - name: upd
            type: resource-update
            properties:
              rules: [{selector: {oamTypes: [WORKLOAD]}, strategy: {op: replace, recreateFields: [spec.selector]}}]
        """), evaluator)
    objs = objects(plan, "local")
    assert objs["Deployment/ns/web"].rules == {
        "applyOnce": {"path": ["spec.replicas"], "affect": "onStateKeep"},
        "resourceUpdate": {"op": "replace", "recreateFields": ["spec.selector"]}}
    assert objs["Secret/ns/creds"].rules == {
        "applyOnce": {"path": ["*"], "affect": "always"},  # merged rules of both apply-once policies
        "garbageCollect": {"strategy": "never", "propagation": "orphan"},
        "takeOver": True, "readOnly": True}
    assert objs["ConfigMap/ns/shared-cfg"].rules == {  # the first k8s-objects object is the workload
        "sharedResource": True, "takeOver": True,
        "resourceUpdate": {"op": "replace", "recreateFields": ["spec.selector"]}}
    assert plan.resource_policies["garbage-collect"] == {"keepLegacyResource": True}
    assert plan.resource_policies["apply-once"] == {"enable": True}


def test_apply_once_enabled_without_rules_lets_everything_drift(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: once, type: apply-once, properties: {enable: true}}
        """), evaluator)
    assert objects(plan, "local")["Deployment/ns/web"].rules == {"applyOnce": {"path": ["*"], "affect": "onStateKeep"}}


def test_selector_needs_one_condition() -> None:
    obj = {"kind": "Deployment", "metadata": {"name": "w", "labels": {"app.oam.dev/component": "w"}}}
    assert not selector_matches({}, obj)
    assert not selector_matches(None, obj)
    assert selector_matches({"resourceTypes": ["Deployment"], "componentNames": ["w"]}, obj)
    assert not selector_matches({"resourceTypes": ["Deployment"], "componentNames": ["x"]}, obj)
    assert not selector_matches({"traitTypes": ["scaler"]}, obj)  # no trait label: no match


HPA_APP = """\
components:
  - name: api
    type: webservice
    properties: {image: "api:1", cpu: "1"}
    traits:%s
      - type: hpa
        properties: {max: 5, cpu: {value: 60}}
policies:
  - name: prod
    type: topology
    properties: {clusterLabelSelector: {env: prod}}%s
"""
SCALER = "\n      - type: scaler\n        properties: {replicas: 3}"


def once(affect: str = "") -> str:
    extra = f", affect: {affect}" if affect else ""
    return ("\n  - name: keep\n    type: apply-once\n    properties:\n      enable: true\n      rules:\n"
            f"        - {{selector: {{resourceTypes: [Deployment]}}, strategy: {{path: [spec.replicas]{extra}}}}}")


@pytest.mark.parametrize(("traits", "policy", "warned"), [
    (SCALER, "", "every re-sync"),
    (SCALER, once(), ""),
    (SCALER, once("onUpdate"), "apply-once keeps spec.replicas only onUpdate"),
    ("", "", ""),  # the Deployment leaves spec.replicas to the HPA: nothing to reset
])
def test_hpa_warning(tmp_path: Path, evaluator: Evaluator, traits: str, policy: str, warned: str) -> None:
    plan = compile_(tmp_path, HPA_APP % (traits, policy), evaluator)
    hpa = [w for w in plan.warnings if "HorizontalPodAutoscaler" in w.message]
    if not warned:
        assert hpa == []
        return
    (w,) = hpa
    assert "Deployment ns/api sets spec.replicas" in w.message and "(clusters bj, hz)" in w.message
    assert warned in w.message
    assert "type: apply-once" in w.hint and "resourceTypes: [Deployment]" in w.hint
    assert w.location.component == "api" and w.location.line > 0


def test_unused_topology_and_override_policies_warn(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: bj, type: topology, properties: {clusters: [bj]}}
          - {name: hz, type: topology, properties: {clusters: [hz]}}
          - {name: big, type: override, properties: {components: [{name: web, properties: {cpu: "2"}}]}}
        workflow:
          steps:
            - {name: one, type: deploy, properties: {policies: [bj]}}
        """), evaluator)
    msgs = [w.message for w in plan.warnings]
    assert msgs == ["topology policy hz is not used by any deploy step, so it has no effect",
                    "override policy big is not used by any deploy step, so it has no effect"]
    assert plan.warnings[0].location.path == "spec.policies[1]"


def test_steps_velapy_does_not_execute_are_planned_as_written(tmp_path: Path, evaluator: Evaluator) -> None:
    # KubeVela's provider-backed steps (built-in parameter-only definitions here) are recorded with
    # their properties and no placements; export-service / export-data use the topology they name
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: bj, type: topology, properties: {clusters: [bj]}}
          - {name: hz, type: topology, properties: {clusters: [hz]}}
        workflow:
          steps:
            - name: pvc
              type: apply-object
              properties: {value: {apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: data}}}
            - {name: one, type: deploy, properties: {policies: [bj]}}
            - name: checks
              type: step-group
              subSteps:
                - {name: wait-db, type: depends-on-app, properties: {name: db, namespace: ns}}
                - name: share
                  type: export-service
                  properties: {ip: 10.0.0.1, port: 80, targetPort: 80, topology: hz}
        """), evaluator)
    pvc, one, checks = plan.steps
    assert (pvc.type, pvc.placements) == ("apply-object", ())
    assert pvc.properties == {"value": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                        "metadata": {"name": "data"}}}
    wait_db, share = checks.sub_steps
    assert (wait_db.type, dict(wait_db.properties)) == ("depends-on-app", {"name": "db", "namespace": "ns"})
    assert (share.type, share.properties["topology"], share.placements) == ("export-service", "hz", ())
    assert [p.cluster for p in one.placements] == ["bj"]
    assert plan.warnings == ()  # hz is used by export-service


def test_identical_objects_in_two_steps_are_fine(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: bj, type: topology, properties: {clusters: [bj]}}
          - {name: prod, type: topology, properties: {clusterLabelSelector: {env: prod}}}
        workflow:
          steps:
            - {name: first, type: deploy, properties: {policies: [bj]}}
            - {name: again, type: deploy, properties: {policies: [prod]}}
        """), evaluator)
    assert len(plan.bundles()["bj"]) == 1
    first, again = plan.steps
    assert first.placements[0].objects[0].digest == again.placements[0].objects[0].digest


def test_conflicting_versions_in_one_cluster(tmp_path: Path, evaluator: Evaluator) -> None:
    with pytest.raises(InputError) as exc:
        compile_(tmp_path, WEB + D("""\
            policies:
              - {name: bj, type: topology, properties: {clusters: [bj]}}
              - name: bigger
                type: override
                properties: {components: [{name: web, traits: [{type: scaler, properties: {replicas: 9}}]}]}
            workflow:
              steps:
                - {name: small, type: deploy, properties: {policies: [bj]}}
                - {name: big, type: deploy, properties: {policies: [bj, bigger]}}
            """), evaluator)
    (d,) = exc.value.diagnostics
    assert d.message == ("steps small and big deploy different versions of Deployment ns/web to cluster bj "
                         "(they differ at spec.replicas)")
    assert d.location.path == "spec.workflow.steps[1]"
    assert "first deployed by step small" in d.hint


def test_gates_groups_and_other_steps(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: bj, type: topology, properties: {clusters: [bj]}}
          - {name: hz, type: topology, properties: {clusters: [hz], namespace: other}}
        workflow:
          mode: {steps: StepByStep, subSteps: StepByStep}
          steps:
            - {name: hub, type: apply-component, properties: {component: web}}
            - {name: wait, type: suspend, properties: {duration: 90s, message: soak}}
            - name: regions
              type: step-group
              mode: DAG
              timeout: 1h
              subSteps:
                - {name: to-bj, type: deploy, properties: {policies: [bj], auto: false, parallelism: 2}}
                - {name: to-hz, type: deploy, dependsOn: [to-bj], if: always, properties: {policies: [hz]}}
            - {name: one-more, type: apply-component, properties: {component: web, cluster: dev, namespace: x}}
        """), evaluator)
    hub, wait, group, more = plan.steps
    assert hub.type == "apply-component" and hub.component == "web"
    assert [(p.cluster, p.namespace) for p in hub.placements] == [("local", "")]
    assert wait.gate is not None and (wait.gate.type, wait.gate.duration, wait.gate.message) == (
        "suspend", "90s", "soak")
    assert (group.mode, group.timeout) == ("DAG", "1h")
    to_bj, to_hz = group.sub_steps
    assert to_bj.gate is not None and to_bj.gate.message == 'Waiting approval to the deploy step "to-bj"'
    assert to_bj.parallelism == 2 and to_hz.parallelism == 5
    assert (to_hz.depends_on, to_hz.if_) == (("to-bj",), "always")
    assert objects(plan, "hz")["Deployment/other/web"].obj["metadata"]["namespace"] == "other"
    assert [(p.cluster, p.namespace) for p in more.placements] == [("dev", "x")]
    assert [c.name for c in plan.clusters] == ["local", "bj", "hz", "dev"]
    assert (plan.workflow_source, plan.mode_steps, plan.mode_sub_steps) == ("explicit", "StepByStep", "StepByStep")


def test_generated_steps(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, """\
        components:
          - {name: a, type: webservice, properties: {image: "a:1"}}
          - {name: b, type: worker, dependsOn: [a], properties: {image: "b:1"}}
        """, evaluator)
    assert [(s.name, s.type, s.depends_on) for s in plan.steps] == [
        ("a", "apply-component", ()), ("b", "apply-component", ("a",))]
    assert (plan.workflow_source, plan.mode_steps) == ("generated", "DAG")
    plan = compile_(tmp_path, """\
        components:
          - {name: a, type: webservice, properties: {image: "a:1"}}
          - {name: b, type: worker, dependsOn: [a], properties: {image: "b:1"}}
        policies:
          - {name: o, type: override, properties: {components: [{name: b, properties: {image: "b:2"}}]}}
          - {name: prod, type: topology, properties: {clusterLabelSelector: {env: prod}}}
        """, evaluator)
    (step,) = plan.steps
    assert (step.name, step.policies) == ("deploy-prod", ("o", "prod"))
    assert dict(step.component_depends_on) == {"b": ("a",)}
    image = objects(plan, "hz")["Deployment/ns/b"].obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "b:2"


@pytest.mark.parametrize(("steps", "message"), [
    ("- {name: d, type: deploy, properties: {policies: [nope]}}", "policy nope not found"),
    ("- {name: d, type: deploy, properties: {policies: [rep]}}", "replication is not supported by velapy yet"),
    ("- {name: d, type: deploy, properties: {inlinePolicies: [{type: topology, properties: {}}]}}",
     "inlinePolicies are not supported"),
    ("- {name: d, type: apply-component, properties: {component: wbe}}", "component wbe not found"),
    ("- {name: d, type: apply-component, properties: {component: web, cluster: mars}}", "failed to get cluster mars"),
])
def test_step_problems(tmp_path: Path, evaluator: Evaluator, steps: str, message: str) -> None:
    spec = WEB + "policies:\n  - {name: rep, type: replication, properties: {keys: [a, b]}}\n" \
        + "workflow:\n  steps:\n    " + steps + "\n"
    with pytest.raises(InputError) as exc:
        compile_(tmp_path, spec, evaluator)
    assert any(message in d.message for d in exc.value.diagnostics), exc.value.render()
    assert all(d.location.line for d in exc.value.diagnostics)


def test_resource_policy_named_in_deploy_warns(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_(tmp_path, WEB + D("""\
        policies:
          - {name: once, type: apply-once, properties: {enable: true}}
        workflow:
          steps:
            - {name: d, type: deploy, properties: {policies: [once]}}
        """), evaluator)
    assert "names policy once of type apply-once, which deploy ignores" in plan.warnings[0].message


def test_deterministic_output(tmp_path: Path, evaluator: Evaluator) -> None:
    spec = WEB + D("""\
        policies:
          - {name: prod, type: topology, properties: {clusterLabelSelector: {env: prod}}}
        """)
    first = render_folder(compile_(tmp_path, spec, evaluator))
    second = render_folder(compile_(tmp_path, spec, evaluator))
    assert first == second
    assert digest_of({"b": 1, "a": [1, "x"]}) == digest_of({"a": [1, "x"], "b": 1})


def test_dry_run_blocks_name_their_clusters(tmp_path: Path, evaluator: Evaluator, registry: Registry) -> None:
    app = load_application(app_yaml(tmp_path, WEB + D("""\
        policies:
          - {name: prod, type: topology, properties: {clusterLabelSelector: {env: prod}, namespace: x}}
          - {name: o, type: override, properties: {components: []}}
        workflow:
          steps:
            - {name: a, type: deploy, properties: {policies: [prod]}}
            - {name: b, type: deploy, properties: {policies: [o]}}
        """)))
    inv = load_inventory(clusters_yaml(tmp_path))
    _warnings, blocks = dry_run_blocks(app, registry, evaluator, None, inv)
    assert {b.title: b.clusters for b in blocks} == {"app with topology prod": ("bj/x", "hz/x"),
                                                     "app only with override policies": ("local",)}
    text = format_blocks([], blocks)
    assert text.splitlines()[1:3] == ["# Application(app with topology prod) -- Component(web)",
                                      "# Clusters: bj/x, hz/x"]
    assert "# Clusters: local\n" in text
    # without an inventory the stream stays vela's: no cluster lines
    _warnings, plain = dry_run_blocks(app, registry, evaluator)
    assert all(b.clusters is None for b in plain) and "# Clusters" not in format_blocks([], plain)


# ----------------------------------------------------------------------------------------------
# workflow checks (run by the compile; here on their own, without the schema validation in front)


def checked(tmp_path: Path, workflow: str, registry: Registry | None = None) -> list[str]:
    app = load_application(app_yaml(tmp_path, WEB + D(workflow)))
    try:
        check_workflow(resolve_workflow(app), registry)
    except InputError as exc:
        return [d.render() for d in exc.diagnostics]
    return []


def test_workflow_dependencies(tmp_path: Path) -> None:
    got = checked(tmp_path, """\
        workflow:
          mode: {steps: DAG}
          steps:
            - {name: a, type: deploy, dependsOn: [c]}
            - {name: b, type: deploy, dependsOn: [a]}
            - {name: c, type: deploy, dependsOn: [b]}
            - name: g
              type: step-group
              subSteps:
                - {name: x, type: suspend, dependsOn: [a, zz]}
                - {name: self, type: suspend, dependsOn: [self]}
                - {name: inner, type: suspend, dependsOn: [g]}
            - {name: after, type: suspend, dependsOn: [x]}
        """)
    assert len(got) == 4, got
    # a sub-step may wait for a step of another level (one status map in KubeVela's engine)
    assert "spec.workflow.steps[3].subSteps[0].dependsOn[1]: step x depends on zz, which is not a step" in got[0]
    assert "spec.workflow.steps[0].dependsOn[0]: dependsOn cycle: a → c → b → a" in got[1]
    assert "subSteps[1].dependsOn[0]: dependsOn cycle: self → self" in got[2]
    assert "subSteps[2].dependsOn[0]: dependsOn cycle: inner → g → inner" in got[3]


def test_workflow_names_types_durations(tmp_path: Path, registry: Registry) -> None:
    got = checked(tmp_path, """\
        workflow:
          steps:
            - {name: a, type: deploy, timeout: 2 hours}
            - {name: a, type: suspend, properties: {duration: 1d}}
            - {name: n, type: notifcation}
            - {name: g, type: step-group, mode: Parallel, subSteps: [{name: inner, type: step-group}]}
            - {name: d, type: deploy, properties: {auto: "no", parallelism: 0, policies: prod}}
            - {name: e, type: apply-component}
        """, registry)
    text = "\n".join(got)
    assert 'invalid timeout "2 hours"' in text
    assert "duplicated step name a (first at line" in text
    assert 'invalid suspend duration "1d"' in text
    assert 'unknown workflow step type "notifcation"' in text and 'did you mean "notification"?' in text
    assert "unknown mode Parallel" in text
    assert "a step-group cannot be nested" in text
    assert "deploy auto must be true or false" in text
    assert "parallelism must be an integer of at least 1" in text
    assert "deploy policies must be a list of policy names" in text
    assert "apply-component needs properties.component" in text


@pytest.mark.parametrize(("text", "ok"), [
    ("30s", True), ("1h30m", True), ("1.5h", True), ("500ms", True), ("0", True), ("-2m", True), ("2µs", True),
    ("", False), ("10", False), ("1d", False), ("5 m", False), ("m", False), (".s", False),
])
def test_go_durations(text: str, ok: bool) -> None:
    assert is_go_duration(text) is ok


def test_inventory_is_optional(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = compile_app(Inputs(app_yaml(tmp_path, WEB)), evaluator)
    assert [c.name for c in plan.clusters] == ["local"]
    assert isinstance(Inventory().hub.name, str)


def test_secret_values_never_enter_a_digest_plainly() -> None:
    import hashlib
    import json as _json

    from velapy.compile.plan import digest_of

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
              "stringData": {"password": "hunter2"}}
    plain = "sha256:" + hashlib.sha256(_json.dumps(secret, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert digest_of(secret) != plain
    changed = {**secret, "stringData": {"password": "hunter3"}}
    assert digest_of(changed) != digest_of(secret)  # a changed value still changes the digest
    assert digest_of(secret) == digest_of(_json.loads(_json.dumps(secret)))  # and it is deterministic


def test_component_inputs_from_outputs_warn(tmp_path: Path, evaluator: Evaluator) -> None:
    """Issue 22 item 10: an input fed by another component's outputs has no value offline; the plan
    (`render -o`) and `validate` warn at the input, naming the producer (or a workflow step)."""
    from velapy.pipeline import validation_warnings
    spec = D("""\
        components:
          - name: db
            type: webservice
            properties: {image: postgres}
            outputs: [{name: db-host, valueFrom: output.metadata.name}]
          - name: web
            type: webservice
            dependsOn: [db]
            properties: {image: "nginx:1.25"}
            inputs:
              - {from: db-host, parameterKey: labels.db}
              - {from: token, parameterKey: labels.token}
        """)
    plan = compile_(tmp_path, spec, evaluator)
    got = [(w.message.split(";")[0], w.location.path) for w in plan.warnings]
    assert got == [
        ("input 'db-host' comes from the outputs of component db at run time", "spec.components[1].inputs[0]"),
        ("input 'token' comes from the outputs of a workflow step at run time", "spec.components[1].inputs[1]")]
    assert [w.message for w in validation_warnings(Inputs(app_yaml(tmp_path, spec)))] == \
        [w.message for w in plan.warnings]
