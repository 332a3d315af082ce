"""Whole rollouts of what `render --emit argocd|flux` writes, run on small models of the engines
(tests/gitops_models.py, each following the upstream function it names): a first rollout, an image
bump, a removal, a cluster leaving, a step rename, two apps in one repository. Plans are built by
hand (no CUE engine), rendered with velapy's own output code, committed to a model repository."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from gitops_models import ArgoCD, Blocked, CliFatal, Fleet, Flux, Repo, docs

from velapy.compile.plan import Gate, Plan, PlannedObject, PlannedPlacement, PlannedStep, digest_of
from velapy.errors import Location
from velapy.handoff import Options
from velapy.handoff.transitions import recreated
from velapy.load.clusters import Cluster
from velapy.pipeline import handoff_output

REPO_URL = "https://git.example.com/fleet.git"


def _obj(cluster: str, obj: dict[str, Any], rules: Mapping[str, Any] | None = None) -> PlannedObject:
    return PlannedObject(cluster, obj, obj["metadata"]["name"], "workload", "", "", digest_of(obj), dict(rules or {}))


def _objects(cluster: str, ns: str, image: str, config: bool, legacy: bool) -> tuple[PlannedObject, ...]:
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
           "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}
    out = [_obj(cluster, web)]
    if config:
        out.append(_obj(cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "web-config", "namespace": ns}, "data": {"a": "1"}}))
    if legacy:  # garbage-collect never: kept when it leaves the app
        out.append(_obj(cluster, {"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "legacy", "namespace": ns}, "data": {}},
                        {"garbageCollect": {"strategy": "never"}}))
    return tuple(out)


def plan(ns: str = "demo", name: str = "shop", image: str = "web:1", *, prod: tuple[str, ...] = ("p1", "p2"),
         prod_step: str = "deploy-production", config: bool = True, legacy: bool = False) -> Plan:
    """test → gate `approve` → production: the canary shape of the README."""
    def deploy(step: str, clusters: tuple[str, ...]) -> PlannedStep:
        return PlannedStep(step, "deploy", placements=tuple(
            PlannedPlacement(c, "", _objects(c, ns, image, config, legacy)) for c in clusters),
            location=Location(file="app.yaml", line=10))

    steps = (deploy("deploy-test", ("test",)),
             PlannedStep("approve", "suspend", gate=Gate("suspend"), location=Location(file="app.yaml", line=20)),
             deploy(prod_step, prod))
    clusters = tuple(Cluster(c) for c in ("test", *prod))
    return Plan(name, ns, "app.yaml", None, clusters, "explicit", "", "StepByStep", "DAG", steps, {}, ())


def render(p: Plan, out: str = "", approve: tuple[str, ...] = ()) -> tuple[dict[str, str], list[str]]:
    """The folder's files (placed at `out` inside the repository) and the render's notes."""
    files, result = handoff_output(p, Options(("argocd", "flux"), repo_url=REPO_URL, repo_path=out, approve=approve))
    prefix = f"{out}/" if out else ""
    return {prefix + rel: text for rel, text in files.items()}, list(result.notes)


def approval(notes: list[str]) -> str:
    """The Argo CD approval command of the gate `approve`, as NOTES.txt prints it."""
    (note,) = [n for n in notes if n.startswith("approve step approve: argocd")]
    return note.removeprefix("approve step approve: ")


def old_approval(name: str = "shop") -> str:
    """What velapy printed before issue 20: a selector without the namespace, no wait, no pin, no --prune."""
    return f"argocd app sync -l velapy.dev/app={name},velapy.dev/step=deploy-production"


def push(repo: Repo, argo: ArgoCD, files: Mapping[str, str]) -> None:
    """A commit of the folder, and `kubectl apply -n argocd -f argocd/` of it (as NOTES.txt says)."""
    repo.commit(files)
    argo.kubectl_apply(files)


def argo_world(files: Mapping[str, str]) -> tuple[Repo, Fleet, ArgoCD]:
    repo, fleet = Repo(), Fleet()
    repo.commit(files)
    argo = ArgoCD(repo, fleet)
    argo.kubectl_apply(files)
    argo.settle()
    return repo, fleet, argo


# ----------------------------------------------------------------------------------------------
# Argo CD


def test_argocd_first_rollout_holds_production_until_the_approval() -> None:
    files, notes = render(plan())
    _repo, fleet, argo = argo_world(files)
    assert argo.errors == []  # 1-appproject.yaml is applied before 2-applicationset.yaml
    assert fleet.images("test") == {"web": "web:1"} and fleet.has_namespace("test", "demo")  # CreateNamespace
    assert fleet.images("p1") == {} and fleet.images("p2") == {}
    entries = argo.status["demo-shop"]
    assert {n: e["status"] for n, e in entries.items()} == {
        "demo-shop-deploy-test-test": "Healthy", "demo-shop-deploy-production-p1": "Waiting",
        "demo-shop-deploy-production-p2": "Waiting"}
    assert argo.rollout_progressing("demo-shop") == "ApplicationSet is performing rollout of step 2"
    argo.run(approval(notes))
    assert fleet.images("p1") == fleet.images("p2") == {"web": "web:1"}
    argo.settle()
    assert argo.rollout_progressing("demo-shop") == "ApplicationSet Rollout has completed"


def test_argocd_without_progressive_syncs_every_stage_deploys_at_once() -> None:
    """Why NOTES.txt starts with the Progressive Syncs check: without it the gates do not exist."""
    files, _notes = render(plan())
    repo, fleet = Repo(), Fleet()
    repo.commit(files)
    argo = ArgoCD(repo, fleet, progressive_syncs=False)
    argo.kubectl_apply(files)
    argo.settle()
    assert fleet.images("p1") == {"web": "web:1"}
    notes_txt = files["argocd/NOTES.txt"]
    assert "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS" in notes_txt
    assert "applicationsetcontroller\\.enable\\.progressive\\.syncs" in notes_txt


def test_argocd_image_bump_approval_deploys_the_canarys_revision_not_head() -> None:
    files, _ = render(plan())
    repo, fleet, argo = argo_world(files)
    argo.run(approval(render(plan())[1]))
    files2, notes2 = render(plan(image="web:2"))
    push(repo, argo, files2)
    argo.settle()
    assert fleet.images("test") == {"web": "web:2"} and fleet.images("p1") == {"web": "web:1"}
    # a third commit lands while the canary still runs web:2: the controllers have not looked yet
    repo.commit(render(plan(image="web:3"))[0])
    old = copy.deepcopy(argo)
    argo.run(approval(notes2))
    assert fleet.images("p1") == fleet.images("p2") == {"web": "web:2"}  # what the canary runs
    old.run(old_approval())  # the old command deploys HEAD, which nobody has seen run
    assert old.fleet.images("p1") == {"web": "web:3"}


def test_argocd_removal_needs_prune_or_the_approval_stops_half_way() -> None:
    files, notes = render(plan())
    repo, fleet, argo = argo_world(files)
    argo.run(approval(notes))
    files2, notes2 = render(plan(image="web:2", config=False))  # a bump that also removes the ConfigMap
    push(repo, argo, files2)
    argo.settle()
    assert fleet.names("test", "ConfigMap") == set()  # RollingSync syncs with the template's automated.prune
    old = copy.deepcopy(argo)
    with pytest.raises(CliFatal, match="1 resources require pruning"):
        old.run(old_approval())
    # the old command: p1 got the new image and kept the removed object; p2 got nothing
    assert old.fleet.images("p1") == {"web": "web:2"} and old.fleet.names("p1", "ConfigMap") == {"web-config"}
    assert old.fleet.images("p2") == {"web": "web:1"}
    argo.run(approval(notes2))
    for c in ("p1", "p2"):
        assert fleet.images(c) == {"web": "web:2"} and fleet.names(c, "ConfigMap") == set()
    argo.settle()
    assert argo.rollout_progressing("demo-shop") == "ApplicationSet Rollout has completed"


def test_argocd_a_kept_object_leaving_git_does_not_stall_later_stages() -> None:
    files, notes = render(plan(legacy=True))
    assert "IgnoreExtraneous" in files["clusters/test/demo/configmap_legacy.yaml"]
    repo, fleet, argo = argo_world(files)
    argo.run(approval(notes))
    files2, notes2 = render(plan(image="web:2"))  # legacy leaves the app: kept in the clusters
    push(repo, argo, files2)
    stalled = copy.deepcopy(argo)
    argo.settle()
    assert fleet.names("test", "ConfigMap") == {"web-config", "legacy"}
    argo.run(approval(notes2))
    assert fleet.images("p2") == {"web": "web:2"}
    # without compare-options IgnoreExtraneous the canary stays OutOfSync: the stage never completes
    for live in stalled.fleet.cluster("test").values():
        live.obj.get("metadata", {}).get("annotations", {}).pop("argocd.argoproj.io/compare-options", None)
    stalled.settle()
    assert stalled.apps["demo-shop-deploy-test-test"].sync == "OutOfSync"
    assert stalled.rollout_progressing("demo-shop") == "ApplicationSet is performing rollout of step 1"
    with pytest.raises(Blocked):
        stalled.run(approval(notes2))


def test_argocd_a_cluster_leaving_removes_its_workloads() -> None:
    files, notes = render(plan())
    repo, fleet, argo = argo_world(files)
    argo.run(approval(notes))
    files2, _ = render(plan(prod=("p1",)))
    assert recreated(files, files2) == []  # a cluster leaving is a removal, not a re-creation
    push(repo, argo, files2)
    argo.settle()
    assert "demo-shop-deploy-production-p2" not in argo.apps
    assert fleet.images("p2") == {} and fleet.images("p1") == {"web": "web:1"}


def test_argocd_step_rename_is_reported_and_removes_production_until_approved() -> None:
    files, notes = render(plan())
    repo, fleet, argo = argo_world(files)
    argo.run(approval(notes))
    files2, notes2 = render(plan(prod_step="deploy-prod"))
    warnings = recreated(files, files2)
    assert ("this change deletes and re-creates Application demo-shop-deploy-production-p1 as "
            "demo-shop-deploy-prod-p1: its workloads are removed until the gate is approved") in warnings[0]
    assert len([w for w in warnings if "Application" in w]) == 2
    assert len([w for w in warnings if "Kustomization" in w]) == 2
    push(repo, argo, files2)
    argo.settle()
    assert fleet.images("p1") == {}  # what the warning says
    argo.run(approval(notes2))
    assert fleet.images("p1") == fleet.images("p2") == {"web": "web:1"}


def test_argocd_two_apps_of_one_repository_stay_apart() -> None:
    demo, demo_notes = render(plan("demo", "shop"), "deploy/demo-shop")
    shop, shop_notes = render(plan("shop", "shop", image="shop:1"), "deploy/shop-shop")
    repo, fleet = Repo(), Fleet()
    repo.commit({**demo, **shop})
    argo = ArgoCD(repo, fleet)
    argo.kubectl_apply(demo, "deploy/demo-shop/argocd/")
    argo.kubectl_apply(shop, "deploy/shop-shop/argocd/")
    argo.settle()
    assert argo.errors == [] and sorted(argo.appsets) == ["demo-shop", "shop-shop"]
    assert sorted(argo.projects) == ["demo-shop", "shop-shop"]
    argo.run(approval(demo_notes))  # approves demo/shop only
    assert set(fleet.names("p1", "Deployment")) == {"web"}
    assert {k[1] for k in fleet.cluster("p1") if k[0] == "Deployment"} == {"demo"}
    argo.run(approval(shop_notes))
    assert {k[1] for k in fleet.cluster("p1") if k[0] == "Deployment"} == {"demo", "shop"}
    # p2 leaves demo/shop: shop/shop keeps running there
    demo2, _ = render(plan("demo", "shop", prod=("p1",)), "deploy/demo-shop")
    repo.commit({**demo2, **shop})
    argo.kubectl_apply(demo2, "deploy/demo-shop/argocd/")
    argo.settle()
    assert {k[1] for k in fleet.cluster("p2") if k[0] == "Deployment"} == {"shop"}


# ----------------------------------------------------------------------------------------------
# Flux


def flux_world(files: Mapping[str, str], out: str = "") -> tuple[Repo, Fleet, Flux]:
    repo, fleet = Repo(), Fleet()
    repo.commit(files)
    flux = Flux(repo, fleet)
    flux.kubectl_apply(files[f"{out}/flux/root.yaml" if out else "flux/root.yaml"])
    flux.settle()
    return repo, fleet, flux


def test_flux_first_rollout_and_the_git_approval() -> None:
    files, notes = render(plan())
    assert any("rendered with --approve approve" in n for n in notes)
    repo, fleet, flux = flux_world(files)
    assert fleet.images("test") == {"web": "web:1"}
    assert fleet.has_namespace("p1", "demo") and fleet.images("p1") == {}  # namespaces first, then the gate
    assert flux.ks["demo-shop-deploy-production-p1"].spec["suspend"] is True
    # the approval is a commit of the folder rendered with --approve
    repo.commit(render(plan(), approve=("approve",))[0])
    flux.settle()
    assert fleet.images("p1") == fleet.images("p2") == {"web": "web:1"}
    # the next change is rendered without --approve: production is held again
    repo.commit(render(plan(image="web:2"))[0])
    flux.settle()
    assert fleet.images("test") == {"web": "web:2"} and fleet.images("p1") == {"web": "web:1"}
    # `flux resume` starts it, but the root re-applies suspend from git at its next reconcile
    flux.resume("demo-shop-deploy-production-p1")
    assert fleet.images("p1") == {"web": "web:2"}
    flux.reconcile("demo-shop")
    assert flux.ks["demo-shop-deploy-production-p1"].spec["suspend"] is True


def test_flux_removal_prunes_and_keeps_what_garbage_collect_never_marks() -> None:
    files, _ = render(plan(legacy=True))
    repo, fleet, flux = flux_world(files)
    repo.commit(render(plan(config=False))[0])
    flux.settle()
    assert fleet.names("test", "ConfigMap") == {"legacy"}


def test_flux_a_cluster_leaving_is_garbage_collected_through_the_root() -> None:
    files, _ = render(plan(), approve=("approve",))
    repo, fleet, flux = flux_world(files)
    assert fleet.images("p2") == {"web": "web:1"}
    files2, _ = render(plan(prod=("p1",)), approve=("approve",))
    # before: `kubectl apply -f` of the units never deletes the unit of p2; it fails before pruning
    old_repo, old_fleet = Repo(), Fleet()
    old_repo.commit(files)
    old = Flux(old_repo, old_fleet)
    old.kubectl_apply(files["flux/units/kustomizations.yaml"])
    old.settle()
    old_repo.commit(files2)
    old.kubectl_apply(files2["flux/units/kustomizations.yaml"])
    old.settle()
    assert old.ks["demo-shop-namespaces-p2"].message == "kustomization path not found: ./flux/namespaces/p2"
    assert not old.ks["demo-shop-deploy-production-p2"].ready
    assert old_fleet.images("p2") == {"web": "web:1"}
    # with the root Kustomization the unit is pruned and its finalizer deletes the workloads
    repo.commit(files2)
    flux.settle()
    assert "demo-shop-deploy-production-p2" not in flux.ks
    assert fleet.images("p2") == {} and fleet.images("p1") == {"web": "web:1"}


def test_flux_step_rename_is_reported_and_held_until_approved() -> None:
    files, _ = render(plan(), approve=("approve",))
    repo, fleet, flux = flux_world(files)
    files2, _ = render(plan(prod_step="deploy-prod"))
    assert any(w.startswith("this change deletes and re-creates Kustomization demo-shop-deploy-production-p1 as "
                            "demo-shop-deploy-prod-p1: its workloads are removed until the gate is approved")
               for w in recreated(files, files2))
    repo.commit(files2)
    flux.settle()
    assert fleet.images("p1") == {}
    repo.commit(render(plan(prod_step="deploy-prod"), approve=("approve",))[0])
    flux.settle()
    assert fleet.images("p1") == {"web": "web:1"}


def test_flux_two_apps_of_one_repository_stay_apart() -> None:
    demo, _ = render(plan("demo", "shop"), "deploy/demo-shop", approve=("approve",))
    shop, _ = render(plan("shop", "shop", image="shop:1"), "deploy/shop-shop", approve=("approve",))
    names = {d["metadata"]["name"] for f in (demo, shop) for rel, t in f.items() if rel.endswith(".yaml")
             and "/flux/" in rel for d in docs(t) if d["kind"] == "Kustomization"}
    assert len(names) == 2 * (1 + 3 + 3)  # root, one namespaces unit and one unit per cluster, per app
    repo, fleet = Repo(), Fleet()
    repo.commit({**demo, **shop})
    flux = Flux(repo, fleet)
    flux.kubectl_apply(demo["deploy/demo-shop/flux/root.yaml"])
    flux.kubectl_apply(shop["deploy/shop-shop/flux/root.yaml"])
    flux.settle()
    assert {k[1] for k in fleet.cluster("p2") if k[0] == "Deployment"} == {"demo", "shop"}
    demo2, _ = render(plan("demo", "shop", prod=("p1",)), "deploy/demo-shop", approve=("approve",))
    repo.commit({**demo2, **shop})
    flux.settle()
    assert {k[1] for k in fleet.cluster("p2") if k[0] == "Deployment"} == {"shop"}
