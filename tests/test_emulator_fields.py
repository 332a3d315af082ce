"""The emulator's pure parts: field sets in fieldsV1 form, paths, patches and selectors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velapy.kube.emulator.auth import Authorizer, RbacError, forbidden_message
from velapy.kube.emulator.fields import (
    PatchError,
    Schema,
    SelectorError,
    field_set,
    from_fields_v1,
    json_patch,
    merge_patch,
    parse_label_selector,
    path_text,
    strategic_merge,
    to_fields_v1,
)
from velapy.kube.emulator.store import ApiError, Store

POD_SPEC = {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                            "env": [{"name": "A", "value": "1"}], "args": ["--x"]}]}


def test_field_set_uses_the_api_servers_fieldsv1_spelling() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "ns", "labels": {"app": "web"}, "uid": "u"},
           "spec": {"template": {"spec": POD_SPEC}, "paused": False}}
    doc = to_fields_v1(field_set(obj, Schema(kind="Deployment")))
    assert doc == {
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:paused": {}, "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {
            ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
            "f:env": {'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}}},
            "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}}}}}
    assert from_fields_v1(doc) == field_set(obj, Schema(kind="Deployment"))


def test_custom_resources_have_atomic_lists_and_duplicates_make_a_list_atomic() -> None:
    obj = {"spec": {"containers": [{"name": "a"}]}}
    assert field_set(obj, Schema(structured=False)) == {("f:spec", "f:containers")}
    dup = {"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}
    assert field_set(dup, Schema()) == {("f:spec", "f:containers")}


def test_path_text() -> None:
    assert path_text(("f:spec", "f:containers", 'k:{"name":"web"}', "f:image")) == '.spec.containers[name="web"].image'
    assert path_text(("f:ports", 'k:{"containerPort":80,"protocol":"TCP"}')) == \
        '.ports[containerPort=80,protocol="TCP"]'


def test_merge_and_json_patch() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == \
        {"a": {"c": 2, "d": 3}, "l": [2]}
    doc = {"a": [1, 2], "b": {"c": 1}}
    assert json_patch(doc, [{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b/c"},
                            {"op": "copy", "from": "/a/0", "path": "/b/d"}, {"op": "test", "path": "/b/d",
                                                                             "value": 1}]) == \
        {"a": [1, 2, 3], "b": {"d": 1}}
    with pytest.raises(PatchError, match="missing path"):
        json_patch(doc, [{"op": "replace", "path": "/nope/x", "value": 1}])


def test_strategic_merge_by_patch_merge_key() -> None:
    live = {"spec": {"containers": [{"name": "web", "image": "a", "env": [{"name": "X", "value": "1"}]},
                                    {"name": "side", "image": "b"}]}}
    patch = {"spec": {"containers": [{"name": "web", "env": [{"name": "Y", "value": "2"}]},
                                     {"name": "side", "$patch": "delete"}],
                      "$setElementOrder/containers": [{"name": "web"}]}}
    out = strategic_merge(live, patch, Schema(kind="Deployment"))
    assert out == {"spec": {"containers": [{"name": "web", "image": "a", "env": [{"name": "X", "value": "1"},
                                                                                {"name": "Y", "value": "2"}]}]}}
    assert strategic_merge({"a": [1, 2]}, {"a": [3]}, Schema()) == {"a": [3]}  # no merge key: replaced


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("app=web", {"app": "web"}, True),
    ("app==web,tier!=db", {"app": "web", "tier": "db"}, False),
    ("tier in (a, b)", {"tier": "b"}, True),
    ("tier notin (a,b)", {}, True),
    ("app", {"app": ""}, True),
    ("!app", {"app": "x"}, False),
    ("", {}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert all(r.matches(labels) for r in parse_label_selector(selector)) is expected


def test_bad_label_selector() -> None:
    with pytest.raises(SelectorError):
        parse_label_selector("a=(b")


def test_rbac_table() -> None:
    authz = Authorizer.load({"users": [{"name": "root", "groups": ["system:masters"]},
                                       {"name": "alice", "token": "t", "groups": ["dev"]}],
                             "rules": [{"groups": ["dev"], "verbs": ["get"], "apiGroups": ["apps"],
                                        "resources": ["deployments"], "namespaces": ["demo"], "clusters": ["a"]}]})
    assert authz.kubeconfig_user.name == "root"
    user = authz.authenticate("t")
    assert user is not None and user.groups == ("dev", "system:authenticated")
    assert authz.allowed("a", "alice", user.groups, "get", "apps", "deployments", "demo", "web")
    assert not authz.allowed("b", "alice", user.groups, "get", "apps", "deployments", "demo", "web")
    assert not authz.allowed("a", "alice", user.groups, "get", "apps", "deployments/status", "demo", "web")
    assert not authz.allowed("a", "alice", user.groups, "get", "apps", "deployments", "", "")  # cluster scope
    assert authz.allowed("a", "root", ("system:masters",), "delete", "", "nodes")
    with pytest.raises(RbacError, match="unknown key"):
        Authorizer.load({"rules": [{"verbs": ["get"], "namespace": ["x"]}]})
    assert forbidden_message("alice", "get", "apps", "deployments/status", "demo", "web") == (
        'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments/status" in API group '
        '"apps" in the namespace "demo"')


# ----------------------------------------------------------------------------------------------
# server-side apply against a model of field ownership

KEYS = ["a", "b", "c", "d"]
apply_step = st.tuples(st.sampled_from(["alice", "bob", "carol"]),
                       st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["1", "2"]), max_size=4),
                       st.booleans())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(apply_step, min_size=1, max_size=8))
def test_apply_matches_the_ownership_model(steps: list[tuple[str, dict[str, str], bool]]) -> None:
    store = Store(kind_rules=False)  # the merge and ownership model alone
    t = store.types.by_kind("v1", "ConfigMap")
    assert t is not None
    values: dict[str, str] = {}
    owners: dict[str, set[str]] = {}
    applied: dict[str, set[str]] = {}
    rv = ""
    for manager, data, force in steps:
        body: dict[str, object] = {"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "x", "namespace": "default"}}
        if data:  # (an empty `data: {}` is itself a field someone owns; the model leaves it out)
            body["data"] = data
        conflicts = sorted(k for k, v in data.items() if k in values and values[k] != v and owners[k] - {manager})
        if conflicts and not force:
            with pytest.raises(ApiError) as err:
                store.apply(t, "default", "x", body, manager)
            assert err.value.code == 409
            causes = err.value.details["causes"]  # type: ignore[index]
            assert sorted((c["field"], c["message"]) for c in causes) == sorted(  # one per (field, other owner)
                (f".data.{k}", f'conflict with "{o}"') for k in conflicts for o in owners[k] - {manager})
            continue
        before = (dict(values), {k: set(v) for k, v in owners.items()})
        for k, v in data.items():
            if k in values and values[k] != v:
                for other in owners[k] - {manager}:  # forced: the others lose the field
                    applied[other].discard(k)
                owners[k] = {manager}
            else:
                owners.setdefault(k, set()).add(manager)
            values[k] = v
        for k in applied.get(manager, set()) - set(data):
            owners[k].discard(manager)
            if not owners[k]:
                del owners[k], values[k]
        applied[manager] = set(data)
        live, _ = store.apply(t, "default", "x", body, manager, force=force)
        assert live.get("data", {}) == values
        owned: dict[str, set[str]] = {}
        for entry in live["metadata"].get("managedFields", []):
            for key in entry["fieldsV1"].get("f:data", {}):
                owned.setdefault(key[2:], set()).add(entry["manager"])
        assert owned == owners
        if (values, owners) == before and rv:
            assert live["metadata"]["resourceVersion"] == rv  # nothing changed: nothing written
        rv = live["metadata"]["resourceVersion"]


container_step = st.tuples(
    st.sampled_from(["alice", "bob", "carol"]),
    st.dictionaries(st.sampled_from(["web", "side"]),
                    st.dictionaries(st.sampled_from(["image", "workingDir"]), st.sampled_from(["x", "y"])),
                    max_size=2),
    st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(container_step, min_size=1, max_size=8))
def test_apply_of_keyed_list_items_matches_the_ownership_model(
        steps: list[tuple[str, dict[str, dict[str, str]], bool]]) -> None:
    """Containers merge by name: an item lives while anyone owns it or a field in it."""
    store = Store(kind_rules=False)  # the merge and ownership model alone
    t = store.types.by_kind("apps/v1", "Deployment")
    assert t is not None
    values: dict[tuple[str, str], str] = {}  # (container, field) → value; `name` included
    owners: dict[tuple[str, ...], set[str]] = {}  # (container,) item nodes and (container, field) leaves
    applied: dict[str, set[tuple[str, ...]]] = {}
    for manager, containers, force in steps:
        items = [{"name": n, **fields} for n, fields in containers.items()]
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "default"},
                "spec": {"template": {"spec": {"containers": items}}}} if items else \
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "default"}}
        paths = {(n,) for n in containers} | {(n, "name") for n in containers} | \
            {(n, f) for n, fs in containers.items() for f in fs}
        wanted = {(n, "name"): n for n in containers} | \
            {(n, f): v for n, fs in containers.items() for f, v in fs.items()}
        conflicts = [p for p, v in wanted.items() if p in values and values[p] != v and owners[p] - {manager}]
        if conflicts and not force:
            with pytest.raises(ApiError) as err:
                store.apply(t, "default", "x", body, manager)
            assert err.value.code == 409
            continue
        for p in paths:
            if p in wanted and p in values and values[p] != wanted[p]:
                for other in owners[p] - {manager}:
                    applied[other].discard(p)
                owners[p] = {manager}
            else:
                owners.setdefault(p, set()).add(manager)
            if p in wanted:
                values[p] = wanted[p]
        for p in sorted(applied.get(manager, set()) - paths, key=len, reverse=True):
            owners[p].discard(manager)
            if not owners[p]:
                del owners[p]
                values.pop(p, None)  # type: ignore[arg-type]
        applied[manager] = paths
        live, _ = store.apply(t, "default", "x", body, manager, force=force)
        got = {c["name"]: {k: v for k, v in c.items() if k != "name"}
               for c in live.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])}
        alive = {p[0] for p in owners}  # an item no one owns anything in is gone with its fields
        want = {n: {f: v for (m, f), v in values.items() if m == n and f != "name"} for n in alive}
        assert got == want


mixed_step = st.tuples(st.sampled_from(["apply", "update"]), st.sampled_from(["alice", "bob"]),
                       st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["1", "2"]), max_size=4),
                       st.booleans())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mixed_step, min_size=1, max_size=8))
def test_apply_and_update_share_ownership_like_the_api_server(
        steps: list[tuple[str, str, dict[str, str], bool]]) -> None:
    """Updates (PUT) take the fields they change without conflicts and drop removed fields from everyone;
    applies conflict with every other manager entry, the same name's Update entry included."""
    store = Store(kind_rules=False)  # the merge and ownership model alone
    t = store.types.by_kind("v1", "ConfigMap")
    assert t is not None
    values: dict[str, str] = {}
    owners: dict[str, set[tuple[str, str]]] = {}
    applied: dict[str, set[str]] = {}
    meta = {"name": "x", "namespace": "default"}
    for verb, manager, data, force in steps:
        me = (manager, "Apply" if verb == "apply" else "Update")
        if verb == "update":
            live = store.objects.get(("", "configmaps", "default", "x"))
            if live is None:
                continue
            body = {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                    "metadata": {**meta, "resourceVersion": live["metadata"]["resourceVersion"]}}
            store.update(t, "default", "x", body, manager)
            for k in set(values) - set(data):
                del values[k], owners[k]
            for k, v in data.items():
                if values.get(k) != v:
                    owners[k] = {me}
                values[k] = v
            for m in applied:  # an Apply entry keeps only what it still owns
                applied[m] = {k for k in applied[m] if (m, "Apply") in owners.get(k, set())}
        else:
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), **({"data": data} if data else {})}
            conflicts = [k for k, v in data.items() if k in values and values[k] != v and owners[k] - {me}]
            if conflicts and not force:
                with pytest.raises(ApiError):
                    store.apply(t, "default", "x", body, manager)
                continue
            for k, v in data.items():
                if k in values and values[k] != v:
                    for other in owners[k] - {me}:
                        if other[1] == "Apply":
                            applied[other[0]].discard(k)
                    owners[k] = {me}
                else:
                    owners.setdefault(k, set()).add(me)
                values[k] = v
            for k in applied.get(manager, set()) - set(data):
                owners[k].discard(me)
                if not owners[k]:
                    del owners[k], values[k]
            applied[manager] = set(data)
            store.apply(t, "default", "x", body, manager, force=force)
        live = store.objects[("", "configmaps", "default", "x")]
        assert live.get("data", {}) == values
        owned: dict[str, set[tuple[str, str]]] = {}
        for entry in live["metadata"].get("managedFields", []):
            for key in entry["fieldsV1"].get("f:data", {}):
                if key != ".":  # the map itself (an Update that wrote `data: {}`); the model has no maps
                    owned.setdefault(key[2:], set()).add((entry["manager"], entry["operation"]))
        assert owned == owners
