"""velapy.review.diff on hand-made folder contents: keys, field paths, masking, the four output formats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from velapy.errors import InputError
from velapy.load.yamlio import dump_yaml
from velapy.review.diff import (
    ABSENT,
    FieldChange,
    Match,
    compare_folders,
    diff_values,
    format_json,
    format_markdown,
    format_text,
    format_unified,
    parse_folder,
    read_folder,
    show_value,
)


def deployment(name: str = "web", ns: str = "demo", replicas: int = 2, image: str = "nginx:1.25",
               api: str = "apps/v1") -> dict[str, Any]:
    return {"apiVersion": api, "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": name, "image": image, "env": [{"name": "MODE", "value": "prod"}]}]}}}}


def secret(password: str, ns: str = "demo") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": ns},
            "data": {"password": password, "user": "YWRtaW4="}, "type": "Opaque"}


def folder(objs: dict[str, list[dict[str, Any]]], plan: Any = None) -> dict[str, str]:
    """A rendered folder as emit lays it out: one object per file, a kustomization per cluster."""
    out: dict[str, str] = {"plan.yaml": dump_yaml(plan if plan is not None else {"steps": []})}
    for cluster, items in objs.items():
        names = []
        for obj in items:
            ns = obj["metadata"].get("namespace") or "_cluster"
            rel = f"{ns}/{obj['kind'].lower()}_{obj['metadata']['name']}.yaml"
            out[f"clusters/{cluster}/{rel}"] = dump_yaml(obj)
            names.append(rel)
        out[f"clusters/{cluster}/kustomization.yaml"] = dump_yaml({"resources": sorted(names)})
    return out


def test_equal_folders_report_nothing() -> None:
    a = folder({"prod-1": [deployment()]})
    cmp = compare_folders(a, dict(a))
    assert cmp.equal and cmp.identical
    assert format_text(cmp) == "no differences\n"
    assert json.loads(format_json(cmp))["equal"] is True


def test_changed_field_names_cluster_object_and_path() -> None:
    old = folder({"prod-1": [deployment(replicas=2)], "prod-2": [deployment(replicas=2)], "test": [deployment()]})
    new = folder({"prod-1": [deployment(replicas=3)], "prod-2": [deployment(replicas=3)], "test": [deployment()]})
    cmp = compare_folders(old, new)
    assert [c.cluster for c in cmp.clusters] == ["prod-1", "prod-2"]
    text = format_text(cmp)
    assert "clusters/prod-1  Deployment demo/web  spec.replicas: 2 → 3\n" in text
    assert "clusters/prod-2  Deployment demo/web  spec.replicas: 2 → 3\n" in text
    assert "test" not in text
    assert text.endswith("2 clusters: 0 added, 0 removed, 2 changed objects\n")


def test_keys_ignore_file_names_and_api_version() -> None:
    old = folder({"c": [deployment(api="apps/v1beta2")]})
    new = {k.replace("deployment_web", "renamed"): v for k, v in folder({"c": [deployment()]}).items()}
    cmp = compare_folders(old, new)
    (obj,) = cmp.clusters[0].objects
    assert obj.status == "changed"
    assert [f.path_text for f in obj.fields] == ["apiVersion"]
    assert not cmp.identical  # the bytes differ: a --check would still call this stale


def test_renamed_component_is_a_removal_and_an_addition() -> None:
    cmp = compare_folders(folder({"c": [deployment("web")]}), folder({"c": [deployment("frontend")]}))
    objs = cmp.clusters[0].objects
    assert [(o.status, o.key.name) for o in objs] == [("added", "frontend"), ("removed", "web")]
    text = format_text(cmp)
    assert "clusters/c  Deployment demo/frontend  added" in text
    assert "clusters/c  Deployment demo/web  removed" in text


def test_list_items_matched_by_name() -> None:
    old = {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}
    new = {"containers": [{"name": "z", "image": "w"}, {"name": "a", "image": "x2"}, {"name": "b", "image": "y"}]}
    changes = diff_values(old, new)
    assert changes == [
        FieldChange(("containers", Match.by(name="a"), "image"), "x", "x2", "changed"),
        FieldChange(("containers", Match.by(name="z")), ABSENT, {"name": "z", "image": "w"}, "added"),
    ]
    assert changes[0].path_text == "containers[name=a].image"


def test_reordered_named_items_are_reported() -> None:
    changes = diff_values({"l": [{"name": "a"}, {"name": "b"}]}, {"l": [{"name": "b"}, {"name": "a"}]})
    assert changes == [FieldChange(("l",), ["[name=a]", "[name=b]"], ["[name=b]", "[name=a]"], "reordered")]


def test_object_references_and_placements_matched_by_identity() -> None:
    web = [{"kind": "Deployment", "name": "web", "namespace": "d", "digest": "1"},
           {"kind": "Service", "name": "web", "namespace": "d", "digest": "2"}]
    old = {"placements": [{"cluster": "a", "objects": web}, {"cluster": "b", "objects": []}]}
    new = {"placements": [{"cluster": "b", "objects": []},
                          {"cluster": "a", "objects": [web[1], {**web[0], "digest": "3"}]}]}
    texts = [(c.path_text, c.op) for c in diff_values(old, new)]
    assert texts == [("placements[cluster=a].objects[Deployment d/web].digest", "changed"),
                     ("placements[cluster=a].objects", "reordered"), ("placements", "reordered")]


def test_lists_without_names_by_index_and_scalars_whole() -> None:
    changes = diff_values({"p": [{"port": 80}, {"port": 81}], "args": ["a", "b"]},
                          {"p": [{"port": 80}, {"port": 82}, {"port": 83}], "args": ["a", "c"]})
    assert [(c.path_text, c.op) for c in changes] == [("args", "changed"), ("p[1].port", "changed"),
                                                      ("p[2]", "added")]


def test_types_are_told_apart() -> None:
    assert diff_values({"a": 1}, {"a": 1.5})
    assert diff_values({"a": 1}, {"a": True})
    assert diff_values({"a": "1"}, {"a": 1})
    assert not diff_values({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})


def test_secret_values_masked_everywhere() -> None:
    old = folder({"c": [secret("aHVudGVyMg==")]})
    new = folder({"c": [secret("c3dvcmRmaXNo")]})
    cmp = compare_folders(old, new)
    (obj,) = cmp.clusters[0].objects
    (fc,) = obj.fields
    assert fc.path_text == "data.password"
    assert (fc.old, fc.new) == ("<secret>", "<secret, changed>")  # nothing derived from the value
    assert "data.password: <secret> → <secret, changed>" in format_text(cmp)
    outputs = [format_text(cmp), format_unified(cmp), format_json(cmp), format_markdown([("app", cmp)])]
    for out in outputs:
        for value in ("aHVudGVyMg==", "c3dvcmRmaXNo", "YWRtaW4="):
            assert value not in out
    assert "data.password" in outputs[0] and "data.user" not in outputs[0]  # unchanged keys are not listed


def test_secret_added_whole_is_masked_and_show_secrets_reveals() -> None:
    old = folder({"c": []})
    new = folder({"c": [secret("aHVudGVyMg==")]})
    assert "aHVudGVyMg==" not in format_unified(compare_folders(old, new))
    shown = compare_folders(folder({"c": [secret("aHVudGVyMg==")]}), folder({"c": [secret("c3dvcmRmaXNo")]}),
                            show_secrets=True)
    assert "aHVudGVyMg== → c3dvcmRmaXNo" in format_text(shown)


def test_string_data_and_masks_stable_per_value() -> None:
    obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
           "stringData": {"token": "plain-text-token"}}
    other = json.loads(json.dumps(obj))
    other["metadata"]["labels"] = {"x": "y"}
    cmp = compare_folders(folder({"c": [obj]}), folder({"c": [other]}))
    assert [f.path_text for f in cmp.clusters[0].objects[0].fields] == ["metadata.labels"]
    assert "plain-text-token" not in format_unified(cmp)


def test_secret_yaml_errors_do_not_quote_the_file() -> None:
    files = {"clusters/c/demo/secret_db.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\n"
                                               "data:\n  password: !!int hunter2\n"}
    with pytest.raises(InputError) as info:
        parse_folder(files, "out")
    assert "hunter2" not in info.value.render()
    assert "out/clusters/c/demo/secret_db.yaml:5" in info.value.render()


def test_bad_folders_collect_every_problem() -> None:
    files = {"clusters/c/a.yaml": "kind: Deployment\n", "clusters/c/b.yaml": "a: [\n",
             "clusters/c/d1.yaml": dump_yaml(deployment()), "clusters/c/d2.yaml": dump_yaml(deployment())}
    with pytest.raises(InputError) as info:
        parse_folder(files, "OUT")
    text = info.value.render()
    assert "OUT/clusters/c/a.yaml: not a Kubernetes object" in text
    assert "OUT/clusters/c/b.yaml:" in text
    assert "Deployment demo/web is in cluster c twice" in text


def test_plan_changes_are_listed() -> None:
    plan_old = {"steps": [{"name": "deploy-test", "type": "deploy"}, {"name": "deploy-prod", "type": "deploy"}]}
    plan_new = {"steps": [{"name": "deploy-test", "type": "deploy"},
                          {"name": "approve", "type": "suspend"},
                          {"name": "deploy-prod", "type": "deploy"}]}
    cmp = compare_folders(folder({"c": [deployment()]}, plan_old), folder({"c": [deployment()]}, plan_new))
    assert not cmp.equal and not cmp.clusters
    assert 'plan.yaml  steps[name=approve]: (none) → {"name":"approve","type":"suspend"}' in format_text(cmp)


def test_layout_only_differences_show_with_files() -> None:
    old = folder({"c": [deployment()]})
    new = dict(old)
    new["clusters/c/README.md"] = "notes\n"
    cmp = compare_folders(old, new)
    assert cmp.equal and not cmp.identical
    assert "clusters/c/README.md  file added" in format_text(cmp, with_files=True)
    assert cmp.stale_clusters() == ["c"]


def test_unified_has_git_like_headers() -> None:
    cmp = compare_folders(folder({"c": [deployment(replicas=1)]}), folder({"c": [deployment(replicas=4)]}))
    text = format_unified(cmp)
    assert text.startswith("--- a/clusters/c/demo/Deployment/web\n+++ b/clusters/c/demo/Deployment/web\n@@")
    assert "-  replicas: 1\n+  replicas: 4\n" in text


def test_json_document_for_bots() -> None:
    cmp = compare_folders(folder({"c": [deployment(replicas=1)]}), folder({"c": [deployment(replicas=4)]}))
    doc = json.loads(format_json(cmp))
    assert doc["summary"] == {"clusters": 1, "added": 0, "removed": 0, "changed": 1, "planChanged": False}
    (obj,) = doc["clusters"][0]["objects"]
    assert obj["group"] == "apps" and obj["kind"] == "Deployment"
    assert obj["fields"] == [{"path": "spec.replicas", "segments": ["spec", "replicas"], "op": "changed",
                              "old": 1, "new": 4}]


def test_markdown_escapes_and_budget() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"k": "a|b`c"}}
    cm2 = json.loads(json.dumps(cm))
    cm2["data"]["k"] = "d"
    md = format_markdown([("app", compare_folders(folder({"x": [cm]}), folder({"x": [cm2]})))])
    assert '| ConfigMap `n/c` | `data.k` | `` "a\\|b`c" `` | `d` |' in md
    many = folder({f"c{i}": [deployment(replicas=1)] for i in range(50)})
    more = folder({f"c{i}": [deployment(replicas=2)] for i in range(50)})
    short = format_markdown([("", compare_folders(many, more))], budget=2000)
    assert len(short) < 4000 and "left out" in short


def test_show_value() -> None:
    assert show_value(3) == "3"
    assert show_value("nginx:1.25") == "nginx:1.25"
    assert show_value("true") == '"true"' and show_value("12") == '"12"'
    assert show_value(ABSENT) == "(none)"
    assert show_value("x" * 100).endswith("…") and len(show_value("x" * 100)) == 60


def test_read_folder(tmp_path: Any) -> None:
    (tmp_path / "clusters" / "c").mkdir(parents=True)
    (tmp_path / "clusters" / "c" / "a.yaml").write_text("x: 1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    (tmp_path / "plan.yaml").write_text("steps: []\n")
    assert read_folder(tmp_path) == {"clusters/c/a.yaml": "x: 1\n", "plan.yaml": "steps: []\n"}
    with pytest.raises(InputError):
        read_folder(tmp_path / "missing")


def test_plan_digests_follow_objects_and_are_not_repeated() -> None:
    def plan(digest: str) -> dict[str, Any]:
        return {"steps": [{"name": "deploy", "placements": [{"cluster": "c", "objects": [
            {"kind": "Deployment", "namespace": "demo", "name": "web", "digest": digest}]}]}]}
    cmp = compare_folders(folder({"c": [deployment(replicas=1)]}, plan("sha256:1")),
                          folder({"c": [deployment(replicas=2)]}, plan("sha256:2")))
    assert not cmp.plan
    assert format_text(cmp) == ("clusters/c  Deployment demo/web  spec.replicas: 1 → 2\n"
                                "1 cluster: 0 added, 0 removed, 1 changed object\n")


def test_secret_masks_reveal_nothing_and_say_changed() -> None:
    """A mask carries no hash: the same value under two names, or a guessed value, gives the same
    text; only "changed" says the two sides differ."""
    a = format_text(compare_folders(folder({"c": [secret("aHVudGVyMg==")]}), folder({"c": [secret("Z3Vlc3M=")]})))
    b = format_text(compare_folders(folder({"c": [secret("c3dvcmRmaXNo")]}), folder({"c": [secret("b3RoZXI=")]})))
    assert a == b and "<secret, changed>" in a
    added = compare_folders(folder({"c": []}), folder({"c": [secret("aHVudGVyMg==")]}))
    assert "aHVudGVyMg==" not in format_json(added) + format_unified(added)
    assert "+  password: <secret>" in format_unified(added)
