"""Apply at scale: requests per (cluster, kind, namespace) rather than per object, a no-op re-apply that writes
nothing (run state included), GC and delete per cluster in parallel, and the run state's index."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import RunningFleet, running_fleet
from test_execute_support import FAST, OPTS, apply, configmap, deployment, namespace, runner, write_plan

from velapy.errors import InputError
from velapy.execute.planfile import ObjectRef
from velapy.execute.state import ConfigMapStore, Entry, RunState, StateConflict, StepState
from velapy.kube import Access
from velapy.kube.client import connect
from velapy.kube.emulator import Fault


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    with running_fleet(["local", "a", "b"], tmp_path_factory.mktemp("emu")) as f:
        yield f


@pytest.fixture
def clean(fleet: RunningFleet) -> RunningFleet:
    fleet.reset()
    return fleet


def _delete(fleet: RunningFleet, cluster: str, name: str) -> None:
    client = connect(Access(cluster, str(fleet.kubeconfig_path), cluster), FAST)
    try:
        client.delete(client.resource("v1", "ConfigMap"), "shop", name)
    finally:
        client.close()


def _objects(c: str, n: int) -> list[dict[str, Any]]:
    return [configmap(f"cm{i}", "shop", k=str(i)) for i in range(n)] + [deployment("web", "shop")]


def test_preflight_lists_once_per_kind_and_namespace_and_dry_runs_once(clean: RunningFleet, tmp_path: Path) -> None:
    a = clean["a"]
    a.put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": _objects("a", 6)}}])
    a.clear_journal()
    report = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert report.phase == "succeeded", report.problems
    cms = [r for r in a.journal if r.resource == "configmaps"]
    assert [r.verb for r in cms if r.verb in ("get", "list")] == ["list"]  # one LIST, not a GET per object
    assert len([r for r in cms if r.method == "PATCH" and r.dry_run]) == 1  # access proved once
    assert len([r for r in cms if r.method == "PATCH" and not r.dry_run]) == 6
    # a lone Deployment: a GET (no LIST for one object) and its own dry run
    deps = [r for r in a.journal if r.resource == "deployments"]
    assert [(r.verb, r.dry_run) for r in deps][:2] == [("get", False), ("patch", True)]


def test_co_owned_object_is_still_dry_run_before_any_write(clean: RunningFleet, tmp_path: Path) -> None:
    """The third ConfigMap has a field another manager owns with another value: the preflight finds the 409
    although an earlier ConfigMap already proved access, and nothing is written."""
    a = clean["a"]
    a.put_object(namespace("shop"))
    v1 = write_plan(tmp_path / "v1", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap(f"cm{i}", "shop", k="1") for i in range(3)]}}])
    assert apply(v1, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    live = a.get("v1", "ConfigMap", "shop", "cm2")
    assert live is not None
    live["data"]["k"] = "hand-edited"
    a.put_object(live, manager="kubectl-edit")
    v2 = write_plan(tmp_path / "v2", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap(f"cm{i}", "shop", k="2") for i in range(3)]}}])
    a.clear_journal()
    refused = apply(v2, clean.kubeconfig_path, tmp_path / "st")
    assert refused.phase == "failed"
    text = "\n".join(refused.problems)
    assert "409" in text and "cm2" in text and ".data.k" in text
    assert a.writes() == []
    assert [r.name for r in a.journal if r.method == "PATCH"] == ["cm0", "cm2"]  # both dry runs


def test_noop_reapply_writes_nothing_not_even_state(clean: RunningFleet, tmp_path: Path) -> None:
    for name in ("a", "b"):
        clean[name].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": _objects("a", 4), "b": _objects("b", 4)}}])
    first = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert first.phase == "succeeded"
    assert clean["local"].writes(kind="ConfigMap")  # the run state went to the hub
    for cluster in clean:
        cluster.clear_journal()
    again = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert again.phase == "succeeded" and again.applied == 0 and again.unchanged == 10
    assert [r for c in clean for r in c.writes()] == []  # members and hub: not one write
    assert sum(1 for r in clean["a"].journal if r.resource) <= 3  # discovery aside: a LIST per kind
    # drift (cm1 deleted by hand): that object is created again, and the state records its new uid
    _delete(clean, "b", "cm1")
    for cluster in clean:
        cluster.clear_journal()
    fixed = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert fixed.phase == "succeeded" and fixed.applied == 1, fixed.problems
    assert [(r.kind, r.name) for r in clean["b"].writes()] == [("ConfigMap", "cm1")]
    assert clean["a"].writes() == []
    shard_b = ConfigMapStore.shard_name("shop", "b", 0)
    # the header at the step's end and the run's end; of the inventory, only cluster b's shard
    assert [r.name for r in clean["local"].writes()] == ["velapy-shop-state", shard_b, "velapy-shop-state"]
    # a failing re-apply is recorded
    clean["a"].add_fault(Fault(method="PATCH", path=r"/configmaps/cm0$", status=403, times=1))
    _delete(clean, "a", "cm0")
    broken = apply(plan, clean.kubeconfig_path, tmp_path / "st")
    assert broken.phase == "failed"
    assert clean["local"].writes(kind="ConfigMap")


def test_delete_lists_per_cluster_and_retries_a_changed_object(clean: RunningFleet, tmp_path: Path) -> None:
    for name in ("a", "b"):
        clean[name].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": _objects("a", 3), "b": _objects("b", 3)}}])
    assert apply(plan, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    for cluster in clean:
        cluster.clear_journal()
    # the listed resourceVersion is stale for cm1 in b: a 409, then a fresh GET and a delete by uid
    clean["b"].add_fault(Fault(method="DELETE", path=r"/configmaps/cm1$", status=409, times=1))
    r, session, _rep = runner(plan, clean.kubeconfig_path, tmp_path / "st")
    try:
        report = r.delete_all()
    finally:
        session.close()
    assert report.phase == "deleted", report.problems
    assert report.deleted == 8 and report.skipped_gc == []
    for c in ("a", "b"):
        assert [o for o in clean[c].objects("v1", "ConfigMap", "shop") if o["metadata"]["name"].startswith("cm")] \
            == []
        reads = [(r.verb, r.name) for r in clean[c].journal if r.resource == "configmaps" and r.verb in ("get", "list")]
        assert reads == ([("list", "")] if c == "a" else [("list", ""), ("get", "cm1")])
        deletes = [r for r in clean[c].journal if r.method == "DELETE" and r.resource == "configmaps" and not r.fault]
        assert all(r.body["preconditions"].get("uid") for r in deletes)
        assert all(r.body["preconditions"].get("resourceVersion") for r in deletes if r.name != "cm1" or c == "a")


def test_delete_runs_clusters_in_parallel(clean: RunningFleet, tmp_path: Path) -> None:
    """Each cluster's DELETE waits at a barrier for the other's: one after the other would break it."""
    for name in ("a", "b"):
        clean[name].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("x", "shop")], "b": [configmap("x", "shop")]}}])
    assert apply(plan, clean.kubeconfig_path, tmp_path / "st").phase == "succeeded"
    barrier = threading.Barrier(2, timeout=20)

    class Meeting:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def delete(self, *args: Any, **kw: Any) -> None:
            barrier.wait()  # BrokenBarrierError (the delete fails) unless the other cluster's delete is under way
            self.inner.delete(*args, **kw)

    r, session, _rep = runner(plan, clean.kubeconfig_path, tmp_path / "st", options=OPTS,
                              factory=lambda acc: Meeting(connect(acc, FAST)) if acc.cluster != "local"
                              else connect(acc, FAST))
    try:
        report = r.delete_all()
    finally:
        session.close()
    assert report.phase == "deleted" and report.deleted == 2, report.problems


def test_state_index_and_serialisation() -> None:
    st = RunState("app", "ns", steps=[StepState("d", "deploy", clusters={"a": "succeeded"})])
    entries = [Entry("a", "v1", "ConfigMap", "ns", f"c{i}", gc={"strategy": "never"}) for i in range(5)]
    for e in entries:
        st.add(e)
    ref = ObjectRef("a", "", "ConfigMap", "ns", "c3")
    assert st.entry(ref) is entries[3]
    st.drop([entries[1], entries[3]])
    assert st.entry(ref) is None and [e.name for e in st.inventory] == ["c0", "c2", "c4"]
    st.inventory.append(Entry("b", "apps/v1", "Deployment", "ns", "web"))  # behind add(): the index follows
    assert st.entry(ObjectRef("b", "apps", "Deployment", "ns", "web")) is not None
    # the same document as the dataclass form
    want = {k: v for k, v in vars(st).items() if not k.startswith("_") and k != "resourceVersion"}
    want["steps"] = [asdict(s) for s in st.steps]
    want["inventory"] = [asdict(e) for e in st.inventory]
    assert json.loads(st.to_json()) == {"apiVersion": "velapy.dev/v1alpha1", "kind": "RunState", **want}
    back = RunState.from_json(st.to_json(), "x")
    assert back.inventory == st.inventory and back.steps == st.steps


def test_refresh_hook_runs_at_most_once_a_second() -> None:
    from velapy.kube.client import _throttle_refresh

    class Cfg:
        """Like the kubeconfig loader's hook, which re-installs itself (and re-sets the configuration)."""

        def __init__(self) -> None:
            self.calls = 0
            self.refresh_api_key_hook: Any = self.hook

        def hook(self, c: Any) -> None:
            c.calls += 1
            c.refresh_api_key_hook = self.hook

    now = [100.0]
    cfg = Cfg()
    _throttle_refresh(cfg, clock=lambda: now[0])
    for _ in range(50):
        cfg.refresh_api_key_hook(cfg)
    assert cfg.calls == 1
    now[0] += 1.5
    for _ in range(50):
        cfg.refresh_api_key_hook(cfg)
    assert cfg.calls == 2
    none = Cfg()
    none.refresh_api_key_hook = None
    _throttle_refresh(none)
    assert none.refresh_api_key_hook is None


def test_emulator_journal_is_bounded(tmp_path: Path) -> None:
    with running_fleet(["a"], tmp_path, journal_limit=3) as f:
        client = connect(Access("a", str(f.kubeconfig_path), "a"), FAST)
        try:
            for _ in range(5):
                client.version()
            client.get(client.resource("v1", "ConfigMap"), "default", "nope")
        finally:
            client.close()
        assert len(f["a"].journal) == 3 and f["a"].journal[-1].name == "nope"


def test_folder_read_again_from_the_object_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from velapy.execute import planfile
    from velapy.load.yamlio import dump_yaml

    monkeypatch.setenv("VELAPY_CACHE_DIR", str(tmp_path / "cache"))
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"},
              "stringData": {"password": "hunter2-do-not-cache"}}
    folder = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap("one", "shop", k="1"), configmap("two", "shop", k="2"), secret]}}])
    reads: list[str] = []
    real = planfile.quick_object

    def counting(text: str, digest: str) -> dict[str, Any] | None:
        reads.append(text)
        return real(text, digest)

    monkeypatch.setattr(planfile, "quick_object", counting)
    first = planfile.load_plan_folder(str(folder))
    assert len(reads) == 3
    cached = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*.json"))
    assert '"two"' in cached and "hunter2" not in cached  # a Secret never enters the cache
    reads.clear()
    again = planfile.load_plan_folder(str(folder))
    assert len(reads) == 1  # only the Secret is parsed again
    assert [o.obj for o in again.objects()] == [o.obj for o in first.objects()]
    # a file changed after the plan was made is refused as ever, the cache notwithstanding
    path = next(folder.rglob("*_two.yaml"))
    path.write_text(dump_yaml(configmap("two", "shop", k="tampered")))
    with pytest.raises(InputError, match="changed after the plan was made"):
        planfile.load_plan_folder(str(folder))
    # a missing file is located in plan.yaml, which (read from the cache) is then read with positions
    path.unlink()
    with pytest.raises(InputError) as missing:
        planfile.load_plan_folder(str(folder))
    where = missing.value.diagnostics[0].location
    assert "is missing" in missing.value.diagnostics[0].message and where.line and where.file.endswith("plan.yaml")


def _store(fleet: RunningFleet) -> Any:
    return ConfigMapStore(connect(Access("local", str(fleet.kubeconfig_path), "local"), FAST))


def _state(per_cluster: dict[str, int]) -> RunState:
    st = RunState("big", "shop", planDigest="sha256:x", steps=[StepState("d", "deploy")])
    for cluster, n in per_cluster.items():
        for i in range(n):
            st.add(Entry(cluster, "apps/v1", "Deployment", "shop", f"web-{i:05d}", uid=f"{i:08d}-uid-{cluster}",
                         resourceVersion=str(i), digest="sha256:" + "ab" * 32, state="applied", step="d",
                         component=f"web-{i}", gc={"strategy": "onAppUpdate"}, order=i))
    return st


def test_state_is_sharded_per_cluster_within_real_limits(clean: RunningFleet) -> None:
    store = _store(clean)
    st = _state({"a": 5000, "b": 10, "c": 1})
    store.save(st)
    hub = clean["local"]
    cms = hub.objects("v1", "ConfigMap", "shop")
    names = sorted(str(c["metadata"]["name"]) for c in cms)
    assert names == sorted(["velapy-big-state", *[ConfigMapStore.shard_name("big", "a", k) for k in range(3)],
                            ConfigMapStore.shard_name("big", "b", 0), ConfigMapStore.shard_name("big", "c", 0)])
    assert all(len(json.dumps(c)) < 1024 * 1024 for c in cms)  # a real API server's ConfigMap limit
    header = next(c for c in cms if c["metadata"]["name"] == "velapy-big-state")
    head = json.loads(header["data"]["state.json"])
    assert "inventory" not in head and len(head["inventoryShards"]) == 5
    back = _store(clean).load("shop", "big")
    assert back is not None and back.inventory == st.inventory and back.steps == st.steps
    # one cluster's entry changes: the header and that cluster's shard are written, nothing else
    again = _store(clean)
    loaded = again.load("shop", "big")
    assert loaded is not None
    hub.clear_journal()
    entry = loaded.entry(ObjectRef("b", "apps", "Deployment", "shop", "web-00003"))
    assert entry is not None
    entry.uid = "new-uid"
    again.save(loaded)
    assert [r.name for r in hub.writes()] == ["velapy-big-state", ConfigMapStore.shard_name("big", "b", 0)]
    # a cluster whose entries are all gone loses its shard; remove() deletes every ConfigMap
    loaded.drop([e for e in loaded.inventory if e.cluster == "c"])
    again.save(loaded)
    assert hub.get("v1", "ConfigMap", "shop", ConfigMapStore.shard_name("big", "c", 0)) is None
    reread = _store(clean).load("shop", "big")
    assert reread is not None and len(reread.inventory) == 5010 and reread.entry(entry.ref) is not None
    assert reread.entry(entry.ref).uid == "new-uid"
    again.remove(loaded)
    assert [c for c in hub.objects("v1", "ConfigMap", "shop") if c["metadata"]["name"].startswith("velapy-big")] \
        == []


def test_sharded_state_keeps_its_lock(clean: RunningFleet) -> None:
    """Two runs read the state; the first saves; the second gets StateConflict before writing anything."""
    _store(clean).save(_state({"a": 3, "b": 3}))
    one, two = _store(clean), _store(clean)
    s1, s2 = one.load("shop", "big"), two.load("shop", "big")
    assert s1 is not None and s2 is not None
    s1.inventory[0].uid = "first"
    one.save(s1)
    clean["local"].clear_journal()
    s2.inventory[4].uid = "second"
    with pytest.raises(StateConflict):
        two.save(s2)
    assert [r.code for r in clean["local"].writes()] == [409]  # the header only, refused
    final = _store(clean).load("shop", "big")
    assert final is not None and final.inventory[0].uid == "first" and final.inventory[4].uid != "second"


def test_state_of_an_earlier_velapy_is_read_and_sharded(clean: RunningFleet) -> None:
    st = _state({"a": 2})
    hub = clean["local"]
    hub.put_object(namespace("shop"))
    hub.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "velapy-big-state",
                                                                          "namespace": "shop"},
                    "data": {"state.json": st.to_json()}})
    store = _store(clean)
    old = store.load("shop", "big")
    assert old is not None and old.inventory == st.inventory
    store.save(old)
    assert hub.get("v1", "ConfigMap", "shop", ConfigMapStore.shard_name("big", "a", 0)) is not None
    back = _store(clean).load("shop", "big")
    assert back is not None and back.inventory == st.inventory


NO_LIST = {
    "users": [{"name": "admin", "groups": ["system:masters"], "kubeconfig": True}, {"name": "alice"}],
    "rules": [
        {"users": ["admin"], "verbs": ["impersonate"], "resources": ["users", "groups"]},
        {"users": ["alice"], "verbs": ["get", "create", "update", "patch", "delete"]},
    ],
}


def test_an_identity_that_may_not_list_gets_and_keeps_working(emulator_fleet: Any, tmp_path: Path) -> None:
    """LISTs refused (403): preflight, run state and delete fall back to one GET per object."""
    fleet = emulator_fleet(["local", "a"], rbac=NO_LIST)
    fleet["a"].put_object(namespace("shop"))
    plan = write_plan(tmp_path / "out", "shop", "shop", [{"name": "d", "type": "deploy", "placements": {
        "a": [configmap(f"cm{i}", "shop") for i in range(3)]}}], identity={"user": "alice"})
    # the app's annotations are a claim (issue 18): the operator acts as alice with --as
    assert apply(plan, fleet.kubeconfig_path, tmp_path / "st", as_user="alice").phase == "succeeded"
    again = apply(plan, fleet.kubeconfig_path, tmp_path / "st", as_user="alice")
    assert again.phase == "succeeded" and again.unchanged == 3
    refused = [r for c in ("local", "a") for r in fleet[c].journal if r.verb == "list"]
    assert refused and all(r.code == 403 for r in refused)
    assert fleet["local"].writes() and all(r.code < 300 for r in fleet["local"].writes())
    r, session, _rep = runner(plan, fleet.kubeconfig_path, tmp_path / "st", as_user="alice")
    try:
        report = r.delete_all()
    finally:
        session.close()
    assert report.phase == "deleted" and report.deleted == 3, report.problems
    assert [c for c in fleet["local"].objects("v1", "ConfigMap", "shop")
            if c["metadata"]["name"].startswith("velapy-shop-state")] == []
