"""velapy.bundle.dryrun: an Application → the blocks and text of `vela dry-run` (semantics §7.1).

The golden cases (tests/test_golden.py) pin whole streams byte for byte; these tests call the
module's functions directly: which blocks are printed for which deploy steps, the warnings, the
errors, and `format_blocks`' layout on hand-made manifests (no engine for those).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from velapy.bundle.dryrun import Block, dry_run_blocks, format_blocks, one_object_per_document
from velapy.compile.render import AUXILIARY_WORKLOAD, ComponentManifest, Output
from velapy.cue.engine import Evaluator
from velapy.errors import EXIT_INVALID, InputError
from velapy.load.application import Application, load_application
from velapy.load.definitions import Registry

APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: shop, namespace: shop}
spec:
  components:
    - name: cfg
      type: k8s-objects
      properties:
        objects:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg}, data: {mode: blue}}
    - name: extra
      type: k8s-objects
      properties:
        objects:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: extra}, data: {k: v}}
"""
POLICIES = """\
  policies:
    - name: east
      type: topology
      properties: {clusters: [local]}
    - name: west
      type: topology
      properties: {clusters: [local]}
    - name: green
      type: override
      properties:
        components:
          - name: ^cfg$
            properties:
              objects:
                - {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg}, data: {mode: green}}
    - name: only-cfg
      type: override
      properties: {selector: [cfg]}
"""


def app_of(tmp_path: Path, text: str, *extra: str) -> Application:
    path = tmp_path / "app.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    files = []
    for n, doc in enumerate(extra):
        f = tmp_path / f"extra-{n}.yaml"
        f.write_text(textwrap.dedent(doc), encoding="utf-8")
        files.append(str(f))
    return load_application(str(path), files)


def summary(blocks: list[Block]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(title, [(component, data.mode or data.k)]) of each block."""
    out = []
    for b in blocks:
        rows = []
        for m in b.manifests:
            assert m.workload is not None
            rows.append((m.component, next(iter(m.workload["data"].values()))))
        out.append((b.title, rows))
    return out


def test_an_app_without_deploy_steps_is_one_block_named_after_it(tmp_path: Path, registry: Registry,
                                                                 evaluator: Evaluator) -> None:
    warnings, blocks = dry_run_blocks(app_of(tmp_path, APP), registry, evaluator)
    assert warnings == []
    assert summary(blocks) == [("shop", [("cfg", "blue"), ("extra", "v")])]
    assert blocks[0].policies == ()


def test_each_deploy_step_is_printed_once_per_topology_with_its_overrides(tmp_path: Path, registry: Registry,
                                                                          evaluator: Evaluator) -> None:
    app = app_of(tmp_path, APP + POLICIES + """\
  workflow:
    steps:
      - {name: both, type: deploy, properties: {policies: [east, west]}}
      - {name: notify, type: notification, properties: {}}
      - {name: green, type: deploy, properties: {policies: [green, only-cfg]}}
""")
    calls = evaluator.calls
    warnings, blocks = dry_run_blocks(app, registry, evaluator)
    assert evaluator.calls == calls + 1  # every deploy step in one engine round
    assert warnings == []
    assert summary(blocks) == [
        ("shop with topology east", [("cfg", "blue"), ("extra", "v")]),
        ("shop with topology west", [("cfg", "blue"), ("extra", "v")]),
        ("shop only with override policies", [("cfg", "green")]),
    ]
    assert blocks[0].manifests == blocks[1].manifests  # one render, printed per topology


def test_a_deploy_step_naming_unknown_policies_is_a_located_error(tmp_path: Path, registry: Registry,
                                                                  evaluator: Evaluator) -> None:
    app = app_of(tmp_path, APP + POLICIES + """\
  workflow:
    steps:
      - {name: a, type: deploy, properties: {policies: [eats]}}
      - {name: b, type: deploy, properties: {policies: [east, ghost]}}
""")
    calls = evaluator.calls
    with pytest.raises(InputError) as info:
        dry_run_blocks(app, registry, evaluator)
    assert evaluator.calls == calls  # nothing rendered
    assert info.value.exit_code == EXIT_INVALID
    assert [(d.message, d.location.line, d.location.path, d.hint) for d in info.value.diagnostics] == [
        ("policy eats not found", 36, "spec.workflow.steps[0].properties.policies[0]", 'did you mean "east"?'),
        ("policy ghost not found", 37, "spec.workflow.steps[1].properties.policies[1]",
         "declare it in spec.policies or pass a standalone Policy with -f"),
    ]


def test_an_override_of_an_unknown_type_is_a_located_error(tmp_path: Path, registry: Registry,
                                                           evaluator: Evaluator) -> None:
    app = app_of(tmp_path, APP + """\
  policies:
    - name: bad
      type: override
      properties: {components: [{name: cfg, type: k8s-objectz}]}
  workflow:
    steps: [{name: d, type: deploy, properties: {policies: [bad]}}]
""")
    with pytest.raises(InputError) as info:
        dry_run_blocks(app, registry, evaluator)
    (d,) = info.value.diagnostics
    assert d.message == 'override policy bad: unknown component type "k8s-objectz"'
    assert (d.location.line, d.hint) == (19, 'did you mean "k8s-objects"?')


def test_standalone_policies_and_workflows_not_referenced_are_warned(tmp_path: Path, registry: Registry,
                                                                     evaluator: Evaluator) -> None:
    policy = """\
        apiVersion: core.oam.dev/v1alpha1
        kind: Policy
        metadata: {name: %s}
        type: topology
        properties: {clusters: [local]}
        """
    workflow = """\
        apiVersion: core.oam.dev/v1alpha1
        kind: Workflow
        metadata: {name: rollout}
        steps: [{name: d, type: deploy, properties: {policies: [used]}}]
        """
    app = app_of(tmp_path, APP, policy % "used", policy % "unused", workflow)
    warnings, blocks = dry_run_blocks(app, registry, evaluator)
    assert warnings == ["WARNING: workflow rollout not referenced by application",
                        "WARNING: policy used not referenced by application",
                        "WARNING: policy unused not referenced by application"]
    assert [b.title for b in blocks] == ["shop"]
    # a workflow the app refers to runs, and only the policies it does not name are warned about
    referring = app_of(tmp_path, APP + "  workflow: {ref: rollout}\n", policy % "used", policy % "unused", workflow)
    warnings, blocks = dry_run_blocks(referring, registry, evaluator)
    assert warnings == ["WARNING: policy unused not referenced by application"]
    assert [b.title for b in blocks] == ["shop with topology used"]


# format_blocks ------------------------------------------------------------------------------------

def test_format_blocks_writes_vela_dry_run_layout() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    aux = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}
    pol = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-policy"}}
    blocks = [
        Block("app with topology t", (
            ComponentManifest("web", cm, (Output(svc, "trait", "expose", "service"),
                                          Output(aux, "auxiliary", AUXILIARY_WORKLOAD, "x"),
                                          Output(cm, "auxiliary", "", "plain"))),
            ComponentManifest("empty", None, ())),
            (pol,)),
    ]
    text = format_blocks(["WARNING: policy p not referenced by application"], blocks)
    assert text == (
        "WARNING: policy p not referenced by application\n\n"
        "---\n# Application(app with topology t) -- Component(web)\n---\n\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n\n---\n"
        "## From the trait expose\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n\n---\n"
        "## From the auxiliary workload\napiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n\n---\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n\n---\n\n"
        "---\n# Application(app with topology t) -- Component(empty)\n---\n\nnull\n\n---\n\n"
        "---\n# Application(app with topology t) -- Policy(from-policy)\n---\n\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-policy\n\n---\n")
    assert format_blocks([], []) == ""
    # the same objects as one document each, in order
    warnings, stream = one_object_per_document(text)
    assert warnings == ["policy p not referenced by application"]
    assert list(yaml.safe_load_all(stream)) == [cm, svc, aux, cm, pol]


def test_the_rendered_blocks_format_to_one_object_per_document(tmp_path: Path, registry: Registry,
                                                               evaluator: Evaluator) -> None:
    warnings, blocks = dry_run_blocks(app_of(tmp_path, APP), registry, evaluator)
    _notes, stream = one_object_per_document(format_blocks(warnings, blocks))
    assert [(o["kind"], o["metadata"]["name"], o["data"]) for o in yaml.safe_load_all(stream)] == [
        ("ConfigMap", "cfg", {"mode": "blue"}), ("ConfigMap", "extra", {"k": "v"})]
    for o in yaml.safe_load_all(stream):  # the labels KubeVela puts on every object
        assert o["metadata"]["labels"]["app.oam.dev/name"] == "shop"
