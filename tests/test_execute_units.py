"""Pure parts of the executor: conditions, durations, desired objects, health, redaction, access
precedence, and the file state store."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from velapy.errors import InputError
from velapy.execute.access import AccessOptions, resolve
from velapy.execute.conditions import ConditionError, StepStatus, parse_condition
from velapy.execute.objects import contains, desired, field_path, health, owner, unchanged
from velapy.execute.planfile import ClusterEntry, parse_duration
from velapy.execute.redact import Redactor
from velapy.execute.state import Entry, FileStore, RunState, StateConflict, StepState
from velapy.load.clusters import Cluster, Identity, Inventory

STEPS = ["canary", "my-step", "prod"]


def st(name: str, phase: str, reason: str = "") -> StepStatus:
    return StepStatus(name, "deploy", phase, reason=reason)


@pytest.mark.parametrize(("text", "expected"), [
    ("always", True),
    ('status.canary.phase == "succeeded"', True),
    ('status.canary.phase != "succeeded"', False),
    ('status["my-step"].phase == "failed"', True),
    ("status['my-step'].failed", False),
    ('status["my-step"].failed', True),
    ("status.canary.succeeded && !status.canary.skipped", True),
    ("status.canary.timeout || status.prod.skipped", False),
    ("context.status.failed", True),
    ("!context.status.succeeded", True),
    ('(status.canary.phase == "succeeded") && (status["my-step"].reason == "Timeout")', True),
    ("status.canary.phase", False),  # not a boolean: the step is skipped, as in KubeVela
])
def test_conditions(text: str, expected: bool) -> None:
    statuses = {"canary": st("canary", "succeeded"), "my-step": st("my-step", "failed", "Timeout"),
                "prod": st("prod", "pending")}
    try:
        cond = parse_condition(text, STEPS)
    except ConditionError:
        assert text == "status['my-step'].failed"
        return
    assert cond.evaluate(statuses, [statuses["canary"], statuses["my-step"]]) is expected


@pytest.mark.parametrize(("text", "why"), [
    ('inputs.x == "1"', "inputs"),
    ('status.nope.phase == "x"', "no step named nope"),
    ("status.canary.colour", "has no field colour"),
    ("status.canary", "read a step's field"),
    ("parameter.x", "cannot evaluate parameter.x"),
    ('status.canary.phase == "x" &&', "expected more"),
    ("status.canary.phase = 1", "unexpected"),
])
def test_conditions_refused(text: str, why: str) -> None:
    with pytest.raises(ConditionError, match=why):
        parse_condition(text, STEPS)


def test_durations() -> None:
    assert parse_duration("30m") == 1800
    assert parse_duration("1h30m15s") == 5415
    assert parse_duration("500ms") == 0.5
    assert parse_duration("0") == 0
    for bad in ("", "10", "5 minutes", "1x"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def dep(replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "9",
                         "managedFields": [], "labels": {"x": "y"}},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": "i:1"}]}}},
            "status": {"readyReplicas": 1}}


def test_desired_object() -> None:
    want = desired(dep(), app="shop", namespace="demo", digest="sha256:ab", tracking="t", namespaced=True,
                   live=None, rules={}, keep=False)
    assert want is not None
    assert "status" not in want and not {"uid", "resourceVersion", "managedFields"} & set(want["metadata"])
    assert want["metadata"]["labels"] == {"x": "y", "app.oam.dev/name": "shop", "app.oam.dev/namespace": "demo"}
    assert want["metadata"]["annotations"]["velapy.dev/digest"] == "sha256:ab"
    assert owner(want) == ("demo", "shop")
    live = dep(7)
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "i:0"
    rule = {"applyOnce": {"path": ["spec.replicas", "spec.template.spec.containers[0].resources"],
                          "affect": "onUpdate"}}
    kept = desired(dep(), app="a", namespace="n", digest="d", tracking="t", namespaced=True, live=live, rules=rule,
                   keep=False)
    assert kept is not None and kept["spec"]["replicas"] == 7
    assert kept["spec"]["template"]["spec"]["containers"][0] == {"name": "c", "image": "i:1"}  # no resources added
    not_now = desired(dep(), app="a", namespace="n", digest="d", tracking="t", namespaced=True, live=live,
                      rules=rule, keep=True)  # onUpdate does not act on a state keep
    assert not_now is not None and not_now["spec"]["replicas"] == 2
    star = {"applyOnce": {"path": ["*"], "affect": "always"}}
    assert desired(dep(), app="a", namespace="n", digest="d", tracking="t", namespaced=True, live=live, rules=star,
                   keep=False) is None
    cluster_scoped = desired({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "namespace": "n"}},
                             app="a", namespace="n", digest="d", tracking="t", namespaced=False, live=None, rules={},
                             keep=False)
    assert cluster_scoped is not None and "namespace" not in cluster_scoped["metadata"]


def test_field_paths() -> None:
    assert field_path("spec.replicas") == ["spec", "replicas"]
    assert field_path('metadata.labels["app.kubernetes.io/name"]') == ["metadata", "labels", "app.kubernetes.io/name"]
    assert field_path("spec.containers[1].image") == ["spec", "containers", 1, "image"]


def test_contains_and_unchanged() -> None:
    assert contains({"a": {"b": [1, {"c": 2}]}}, {"a": {"b": [1, {"c": 2, "d": 3}], "e": 1}})
    assert not contains({"a": [1, 2]}, {"a": [1, 2, 3]})
    assert not contains({"a": True}, {"a": 1}) and contains({"a": 1}, {"a": 1.0})
    assert contains({"a": None}, {}) and not contains({"a": None}, {"a": 1})
    want = {"metadata": {"annotations": {"velapy.dev/digest": "sha256:1"}}, "data": {"k": "v"}}
    assert unchanged(want, {"metadata": {"annotations": {"velapy.dev/digest": "sha256:1"}, "uid": "x"},
                            "data": {"k": "v"}})
    assert not unchanged(want, {"metadata": {"annotations": {"velapy.dev/digest": "sha256:0"}}, "data": {"k": "v"}})
    assert not unchanged(want, {"metadata": {"annotations": {"velapy.dev/digest": "sha256:1"}}, "data": {"k": "w"}})
    assert not unchanged(want, None)


def test_health() -> None:
    d = dep(3)
    d["metadata"]["generation"] = 2
    d["status"] = {"observedGeneration": 2, "replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3}
    assert health(d).healthy and health(d).ready == "3/3"
    d["status"]["observedGeneration"] = 1
    assert not health(d).healthy and "generation 2" in health(d).message
    d["status"].update(observedGeneration=2, updatedReplicas=2)
    assert not health(d).healthy
    d["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    assert health(d).failed
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {"replicas": 2},
           "status": {"readyReplicas": 2, "updatedReplicas": 2}}
    assert health(sts).healthy
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "status": {"desiredNumberScheduled": 3, "numberReady": 2,
                                                                   "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert not health(ds).healthy
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"completions": 2}, "status": {"succeeded": 1}}
    assert not health(job).healthy
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    assert health(job).failed
    job["status"] = {"succeeded": 2}
    assert health(job).healthy
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}
    assert not health(pvc).healthy
    pvc["status"]["phase"] = "Bound"
    assert health(pvc).healthy
    assert health({"apiVersion": "v1", "kind": "ConfigMap"}).healthy


def test_redactor() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"p": base64.b64encode(b"hunter22").decode()},
              "stringData": {"t": "tok-123456"}}
    r = Redactor.from_objects([secret, {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "visible"}}])
    text = r("value hunter22 and aHVudGVyMjI= and tok-123456 and dG9rLTEyMzQ1Ng== and visible; Bearer abc.def")
    assert "hunter22" not in text and "aHVudGVyMjI=" not in text and "tok-123456" not in text
    assert "dG9rLTEyMzQ1Ng==" not in text and "abc.def" not in text and "visible" in text


KUBECONFIG = {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": n, "cluster": {"server": f"https://127.0.0.1:{p}"}} for n, p in
                 (("local", 1), ("a", 2), ("b", 3), ("x", 4))],
    "users": [{"name": "u", "user": {"token": "t"}},
              {"name": "as-bob", "user": {"token": "t", "as": "bob", "as-groups": ["g1", "g2"]}}],
    "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in ("local", "a", "b")]
                + [{"name": "x-ctx", "context": {"cluster": "x", "user": "as-bob"}}],
}


def test_access_precedence(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    other = tmp_path / "other"
    other.write_text(yaml.safe_dump(KUBECONFIG))
    plan = {"a": ClusterEntry("a", identity=Identity("plan-user")),
            "b": ClusterEntry("b", kubeconfig=str(other), context="x-ctx")}
    inv = Inventory((Cluster("local"), Cluster("a", identity=Identity("inv-user")), Cluster("b", context="b")))
    acc, hub = resolve(["a", "b"], plan, None, AccessOptions(str(kc), inventory=inv))
    assert (acc["a"].kubeconfig, acc["a"].context, acc["a"].identity) == (str(kc), "a", Identity("inv-user"))
    assert (acc["b"].kubeconfig, acc["b"].context) == (str(other), "b")  # the inventory's context wins
    assert hub is not None and hub.context == "local"
    acc, _ = resolve(["a"], plan, Identity("app-user", ("g",)), AccessOptions(str(kc)))
    assert acc["a"].identity == Identity("plan-user")  # the app's annotations are a claim, never the identity
    acc, _ = resolve(["a"], plan, Identity("app-user"), AccessOptions(str(kc), as_user="flag", as_groups=("f",)))
    assert acc["a"].identity == Identity("flag", ("f",))
    with pytest.raises(InputError) as err:
        resolve(["a", "nope", "also-nope"], {}, None, AccessOptions(str(kc)))
    text = err.value.render()
    assert "cluster nope: kubeconfig" in text and "cluster also-nope" in text
    assert "context nope: no such context" in text


def test_kubeconfig_as_fields_are_read(tmp_path: Path) -> None:
    from velapy.kube.kubeconfig import load_context

    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    ctx = load_context(str(kc), "x-ctx")
    assert ctx.impersonate == Identity("bob", ("g1", "g2")) and ctx.server == "https://127.0.0.1:4"
    os.environ["KUBECONFIG"] = f"{kc}{os.pathsep}/elsewhere"
    try:
        from velapy.kube.kubeconfig import default_kubeconfig
        assert default_kubeconfig() == str(kc)
    finally:
        del os.environ["KUBECONFIG"]


def test_file_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "state")
    assert store.load("ns", "app") is None
    s = RunState("app", "ns", planDigest="sha256:1", steps=[StepState("d", "deploy", "succeeded")],
                 inventory=[Entry("a", "v1", "ConfigMap", "ns", "x", uid="u1")])
    store.save(s)
    assert s.generation == 1
    loaded = store.load("ns", "app")
    assert loaded is not None and loaded.inventory[0].uid == "u1" and loaded.steps[0].phase == "succeeded"
    stale = store.load("ns", "app")
    assert stale is not None
    loaded.message = "first"
    store.save(loaded)
    with pytest.raises(StateConflict, match="state changed"):
        store.save(stale)
    assert store.load("ns", "app").message == "first"  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "state" / "ns").iterdir()) == [".app.lock", "app.json"]
    (tmp_path / "state" / "ns" / "app.json").write_text("{not json")
    with pytest.raises(Exception, match="unreadable run state"):
        store.load("ns", "app")


def test_groups_without_a_user_are_refused(tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump(KUBECONFIG))
    with pytest.raises(InputError, match=r"cluster a: the identity names groups \(ops\) but no user"):
        resolve(["a"], {"a": ClusterEntry("a", identity=Identity("", ("ops",)))}, None, AccessOptions(str(kc)))


def test_reporter_live_and_plain() -> None:
    import io

    from velapy.execute.progress import Reporter

    plain = io.StringIO()
    rep = Reporter(plain, live=False, redact=lambda s: s.replace("secret", "<redacted>"))
    rep.working("waiting 1")
    rep.working("waiting 1")
    rep.working("waiting 2")
    rep.say("done with secret")
    assert plain.getvalue() == "waiting 1\nwaiting 2\ndone with <redacted>\n"
    assert rep.lines == ["done with <redacted>"]
    tty = io.StringIO()
    live = Reporter(tty, live=True)
    live.working("applying x")
    live.working("applying y")
    live.say("step done")
    live.done()
    assert tty.getvalue() == "applying x\r\x1b[Kapplying y\r\x1b[Kstep done\n"


def test_redactor_masks_values_not_parts_of_names() -> None:
    """Issue 22 item 11: a Secret value `orders` must not turn `shop/orders-api` into
    `shop/<redacted>-api`; where the value (or its base64 form) stands, it is masked."""
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"p": base64.b64encode(b"orders").decode()},
              "stringData": {"k": "SHARD", "flag": "true"}}
    r = Redactor.from_objects([secret])
    assert r("applying Deployment shop/orders-api") == "applying Deployment shop/orders-api"
    assert r("applying Job shop/load-test-SHARD (ready: true)") == "applying Job shop/load-test-SHARD (ready: true)"
    assert r('Invalid value: "orders" and b3JkZXJz, SHARD') == 'Invalid value: "<redacted>" and <redacted>, <redacted>'
