"""The output folder, plan.yaml and its schema, the plan formats, and the render/plan commands."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from velapy import cli
from velapy.bundle.emit import (
    PlanSchemaError,
    format_plan,
    object_paths,
    plan_data,
    render_folder,
    validate_plan_data,
    write_folder,
)
from velapy.bundle.outdir import MANIFEST, manifest_text
from velapy.compile.plan import Gate, Plan, PlannedObject, PlannedPlacement, PlannedStep, digest_of
from velapy.cue.engine import Evaluator
from velapy.errors import InputError
from velapy.load.clusters import Cluster, Identity

ROOT = Path(__file__).resolve().parent.parent


def obj(kind: str, name: str, ns: str = "demo", api: str = "v1", cluster: str = "bj", **extra: Any) -> PlannedObject:
    o: dict[str, Any] = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, **extra}
    if ns:
        o["metadata"]["namespace"] = ns
    return PlannedObject(cluster, o, "web", "workload", "", "", digest_of(o))


def make_plan(steps: tuple[PlannedStep, ...], clusters: tuple[str, ...] = ("bj", "hz")) -> Plan:
    return Plan(
        app_name="web", app_namespace="demo", app_file="/somewhere/apps/web/app.yaml",
        identity=Identity("alice", ("kubevela:dev",)),
        clusters=tuple(Cluster(c, {"env": "prod"}, version="1.28") for c in clusters),
        workflow_source="explicit", workflow_ref="", mode_steps="StepByStep", mode_sub_steps="DAG",
        steps=steps, resource_policies={}, warnings=(),
    )


def deploy(name: str, *placements: PlannedPlacement, **kw: Any) -> PlannedStep:
    return PlannedStep(name, "deploy", policies=("p",), parallelism=5, placements=placements, **kw)


def sample() -> Plan:
    bj = PlannedPlacement("bj", "", (obj("Deployment", "web", api="apps/v1"), obj("Service", "web"),
                                     obj("Namespace", "team", ns=""),
                                     obj("Ingress", "web", api="networking.k8s.io/v1"),
                                     obj("Ingress", "web", api="extensions/v1beta1"),
                                     obj("ClusterRole", "demo:reader", ns="", api="rbac.authorization.k8s.io/v1")))
    hz = PlannedPlacement("hz", "", (obj("Deployment", "web", api="apps/v1", cluster="hz"),))
    return make_plan((
        deploy("first", bj),
        PlannedStep("approve", "suspend", gate=Gate("suspend", "look first", "")),
        PlannedStep("regions", "step-group", mode="DAG", timeout="10m",
                    sub_steps=(deploy("to-hz", hz, gate=Gate("approval", "wait")),)),
    ))


def test_object_paths_and_group_suffix() -> None:
    paths = sorted(object_paths(sample()).values())
    assert paths == [
        "clusters/bj/_cluster/clusterrole_demo_reader.yaml",
        "clusters/bj/_cluster/namespace_team.yaml",
        "clusters/bj/demo/deployment_web.yaml",
        "clusters/bj/demo/ingress.extensions_web.yaml",  # two Ingresses named web: the group tells them apart
        "clusters/bj/demo/ingress.networking.k8s.io_web.yaml",
        "clusters/bj/demo/service_web.yaml",
        "clusters/hz/demo/deployment_web.yaml",
    ]


def test_render_folder_files_and_kustomization() -> None:
    files = render_folder(sample())
    assert sorted(files) == sorted(["plan.yaml", "clusters/bj/kustomization.yaml", "clusters/hz/kustomization.yaml",
                                    *object_paths(sample()).values()])
    kust = yaml.safe_load(files["clusters/bj/kustomization.yaml"])
    assert kust["kind"] == "Kustomization"
    assert kust["resources"][:2] == ["demo/deployment_web.yaml", "demo/service_web.yaml"]  # deploy order
    assert yaml.safe_load(files["clusters/hz/demo/deployment_web.yaml"])["kind"] == "Deployment"


def test_plan_yaml_shape() -> None:
    data = yaml.safe_load(render_folder(sample())["plan.yaml"])
    assert data["application"] == {"name": "web", "namespace": "demo", "file": "app.yaml",
                                   "identity": {"user": "alice", "groups": ["kubevela:dev"]}}
    assert [c["name"] for c in data["clusters"]] == ["bj", "hz"]
    assert data["clusters"][0]["objects"] == 6 and data["clusters"][0]["bundle"] == "clusters/bj"
    first, approve, group = data["steps"]
    o = first["placements"][0]["objects"][0]
    assert o["file"] == "clusters/bj/demo/deployment_web.yaml" and o["digest"].startswith("sha256:")
    assert approve["gate"] == {"type": "suspend", "message": "look first"}
    assert group["mode"] == "DAG" and group["subSteps"][0]["gate"]["type"] == "approval"
    assert data["workflow"] == {"source": "explicit", "mode": {"steps": "StepByStep", "subSteps": "DAG"}}


def test_plan_schema_rejects_a_broken_plan() -> None:
    data = plan_data(sample())
    data["steps"][0]["placements"][0]["objects"][0]["digest"] = "md5:1"
    del data["workflow"]
    with pytest.raises(PlanSchemaError) as exc:
        validate_plan_data(data)
    assert exc.value.exit_code == 4
    assert len(exc.value.diagnostics) == 2


def test_write_folder_is_atomic_idempotent_and_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("kept\n")
    files = render_folder(sample())
    write_folder(out, {**files, "clusters/old/x.yaml": "stale\n"})  # an object velapy wrote earlier
    write_folder(out, files)
    got = {str(p.relative_to(out)).replace(os.sep, "/"): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert got == {**files, "README.md": "kept\n", MANIFEST: manifest_text(files)}
    before = {p: p.stat().st_size for p in out.rglob("*")}
    write_folder(out, files)
    assert {p: p.stat().st_size for p in out.rglob("*")} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".velapy-") and p.name != MANIFEST]


def test_write_folder_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        write_folder(target, {"plan.yaml": ""})


def test_formats() -> None:
    plan = sample()
    tree = format_plan(plan, "tree")
    assert tree.splitlines()[0] == "web (namespace demo) — workflow explicit, steps StepByStep"
    assert "├── 1 first [deploy]  policies: p" in tree
    assert "│   └── bj" in tree and "Deployment demo/web  " in tree
    assert "2 approve [suspend]  waits until resumed" in tree
    assert "3.1 to-hz [deploy]  waits for approval first" in tree
    mermaid = format_plan(plan, "mermaid")
    assert mermaid.startswith("flowchart TD\n")
    assert 's3["regions (step-group, DAG)<br/>timeout 10m"]' in mermaid
    assert "s1 --> s2" in mermaid and "s2 --> s3" in mermaid
    assert json.loads(format_plan(plan, "json")) == yaml.safe_load(format_plan(plan, "yaml"))
    with pytest.raises(InputError, match="unknown plan format"):
        format_plan(plan, "dot")


# ----------------------------------------------------------------------------------------------
# the commands (with the session's engine)


@pytest.fixture
def shared_engine(monkeypatch: pytest.MonkeyPatch, evaluator: Evaluator) -> None:
    @contextlib.contextmanager
    def borrowed(**_kw: object) -> Iterator[Evaluator]:
        yield evaluator

    monkeypatch.setattr(cli.base, "open_evaluator", borrowed)


CANARY = ROOT / "golden" / "fleet-canary"


@pytest.mark.usefixtures("shared_engine")
def test_render_output_folder_matches_the_golden(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["render", str(CANARY / "app.yaml"), "--clusters", str(CANARY / "clusters.yaml"), "-o", str(out)]
    res = CliRunner().invoke(cli.main, args)
    assert res.exit_code == 0, res.output
    assert "plan.yaml and 9 files" in res.output
    expected = CANARY / "expected" / "out"
    for p in expected.rglob("*"):
        if p.is_file():
            assert (out / p.relative_to(expected)).read_bytes() == p.read_bytes(), p


@pytest.mark.usefixtures("shared_engine")
def test_render_stream_names_clusters_only_with_an_inventory() -> None:
    plain = CliRunner(mix_stderr=False).invoke(cli.main, ["render", str(CANARY / "app.yaml")])
    assert plain.exit_code == 0 and "# Clusters:" not in plain.output
    assert "cluster test-hz not checked: no cluster inventory" in plain.stderr  # a warning, outside the stream
    named = CliRunner(mix_stderr=False).invoke(cli.main, ["render", str(CANARY / "app.yaml"), "--clusters",
                                                          str(CANARY / "clusters.yaml")])
    assert named.exit_code == 0
    assert "# Clusters: prod-bj, prod-sh\n" in named.stdout
    unnamed = named.stdout.replace("# Clusters: test-hz\n", "").replace("# Clusters: prod-bj, prod-sh\n", "")
    assert unnamed == plain.stdout  # otherwise the same bytes


@pytest.mark.usefixtures("shared_engine")
@pytest.mark.parametrize("fmt", ["tree", "yaml", "json", "mermaid"])
def test_plan_command(fmt: str) -> None:
    args = ["plan", str(CANARY / "app.yaml"), "--clusters", str(CANARY / "clusters.yaml"), "--format", fmt]
    first = CliRunner().invoke(cli.main, args)
    second = CliRunner().invoke(cli.main, args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert "deploy-production" in first.output


@pytest.mark.usefixtures("shared_engine")
def test_bad_inventory_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "clusters.yaml"
    bad.write_text("clusters:\n  - name: ok\n  - labels: {}\n")
    res = CliRunner().invoke(cli.main, ["plan", str(CANARY / "app.yaml"), "--clusters", str(bad)])
    assert res.exit_code == 2
    assert f"error: {bad}:3:5: clusters[1]: missing required field name" in res.output
    assert "Traceback" not in res.output


def test_the_folder_plan_matches_the_schema_though_the_writer_skips_the_check() -> None:
    plan = sample()
    data = yaml.safe_load(render_folder(plan)["plan.yaml"])
    validate_plan_data(data)
    assert data == json.loads(json.dumps(plan_data(plan)))
