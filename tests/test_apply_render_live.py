"""Rendering an app file against live clusters: ref-objects read from the hub (ACK One's pattern) and
cluster versions read from /version, compared with the offline render of the same inputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml
from test_execute_support import FAST

from velapy.bundle import emit
from velapy.cue.engine import Evaluator
from velapy.execute import Target
from velapy.execute.session import compile_live, default_factory
from velapy.load.yamlio import load_file
from velapy.pipeline import Inputs, compile_app

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "golden"


def _strip_version(clusters: Path, out: Path) -> Path:
    data = yaml.safe_load(clusters.read_text())
    for c in data["clusters"]:
        c.pop("version", None)
    out.write_text(yaml.safe_dump(data))
    return out


def test_ref_objects_from_the_live_hub_render_like_the_folder(emulator_fleet: Any, evaluator: Evaluator,
                                                              tmp_path: Path) -> None:
    case = GOLDEN / "fleet-ref-objects"
    fleet = emulator_fleet(["local"])
    for doc in load_file(case / "resources" / "app-meta.yaml"):
        fleet["local"].put_object(doc.data, manager="kubectl")
    target = Target(str(case / "app.yaml"), Inputs(str(case / "app.yaml"), clusters=str(case / "clusters.yaml")),
                    str(fleet.kubeconfig_path))
    live, stream = compile_live(target, evaluator, default_factory(FAST), stream=True)
    # the hub serves its objects as a real API server does (canonical quantities, defaults filled in), so the
    # live render equals the offline render of a --resources folder holding those served objects
    served = tmp_path / "resources"
    shutil.copytree(case / "resources", served)
    docs = []
    for doc in load_file(case / "resources" / "app-meta.yaml"):
        meta = doc.data["metadata"]
        obj = fleet["local"].get(doc.data["apiVersion"], doc.data["kind"], meta.get("namespace", ""), meta["name"])
        assert obj is not None
        for k in ("resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"):
            obj["metadata"].pop(k, None)
        obj.pop("status", None)
        docs.append(obj)
    (served / "app-meta.yaml").write_text(yaml.safe_dump_all(docs))
    offline = compile_app(Inputs(str(case / "app.yaml"), clusters=str(case / "clusters.yaml"),
                                 resources=str(served)), evaluator)
    assert emit.render_folder(live) == emit.render_folder(offline)
    assert "# Application(" in stream
    reads = [r for r in fleet["local"].journal if r.resource and r.verb in ("get", "list")]
    assert {r.resource for r in reads} >= {"deployments", "configmaps", "secrets", "serviceexports"}
    assert all(not r.is_write for r in fleet["local"].journal)


def test_cluster_versions_come_from_the_clusters(emulator_fleet: Any, evaluator: Evaluator, tmp_path: Path) -> None:
    case = GOLDEN / "fleet-hpa"
    app = tmp_path / "app.yaml"
    shutil.copy(case / "app.yaml", app)
    clusters = _strip_version(case / "clusters.yaml", tmp_path / "clusters.yaml")
    fleet = emulator_fleet(["hz-prod", "hz-prod-legacy"], versions={"hz-prod": "1.28.3",
                                                                   "hz-prod-legacy": "v1.20.11-aliyun.1"})
    target = Target(str(app), Inputs(str(app), clusters=str(clusters)), str(fleet.kubeconfig_path))
    live, _stream = compile_live(target, evaluator, default_factory(FAST))
    hpas = {o.cluster: o.api_version for s in live.steps for o in s.objects() if o.kind == "HorizontalPodAutoscaler"}
    assert hpas == {"hz-prod": "autoscaling/v2", "hz-prod-legacy": "autoscaling/v2beta2"}
    expected = (case / "expected" / "out" / "plan.yaml").read_text()  # the same versions given in the inventory
    assert "autoscaling/v2beta2" in expected and "autoscaling/v2\n" in expected
