"""Trait patch semantics: the worked examples of the semantics doc (§3.4) and cases rebuilt, as
JSON data, from the expectations of kubevela/workflow `pkg/cue/model/sets/operation_test.go`."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from velapy.compile.patch import (
    PatchError,
    apply_patch,
    json_merge_patch,
    json_patch,
    strategy_unify,
)

CONTAINERS = ("spec", "template", "spec", "containers")
KEY_NAME = {"patchKey": "name"}


def webservice() -> dict[str, Any]:
    """The base of §3.4: a webservice Deployment's spec with one container `web`."""
    return {
        "spec": {
            "selector": {"matchLabels": {"app.oam.dev/component": "web"}},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}]},
                    ]
                }
            },
        }
    }


def containers_patch(*items: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": list(items)}}}}


def containers_of(result: Any) -> Any:
    return result["spec"]["template"]["spec"]["containers"]


def unify(base: Any, patch: Any, tags: Mapping[Any, Mapping[str, str]] | None = None) -> Any:
    """apply_patch, also checking that neither input is touched (tag keys typed loosely: literal
    tuples like `("spec",)` are not `Path` to mypy, whose Mapping keys are invariant)."""
    before = (copy.deepcopy(base), copy.deepcopy(patch))
    result = apply_patch(base, patch, tags or {})
    assert (base, patch) == before
    return result


# --- §3.4 worked examples -------------------------------------------------------------------------


def test_example_1_append_by_key() -> None:
    result = unify(webservice(), containers_patch({"name": "log", "image": "fluentd"}), {CONTAINERS: KEY_NAME})
    assert containers_of(result) == [
        {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}]},
        {"name": "log", "image": "fluentd"},
    ]
    assert result["spec"]["selector"] == webservice()["spec"]["selector"]


def test_example_2_merge_by_inherited_key() -> None:
    patch = containers_patch({"name": "web", "env": [{"name": "B", "value": "2"}]})
    result = unify(webservice(), patch, {CONTAINERS: KEY_NAME})
    assert containers_of(result) == [
        {"name": "web", "image": "nginx", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
    ]


def test_example_3_conflict() -> None:
    patch = containers_patch({"name": "web", "env": [{"name": "A", "value": "9"}]})
    with pytest.raises(PatchError) as caught:
        unify(webservice(), patch, {CONTAINERS: KEY_NAME})
    assert caught.value.path == "spec.template.spec.containers[0].env[0].value"
    # CUE names the patch's value first (operation_test.go: base "x1", patch "x2" -> "x2" and "x1").
    assert caught.value.message == 'conflicting values "9" and "1"'
    assert 'spec.template.spec.containers[0].env[0].value: conflicting values "9" and "1"' in str(caught.value)


def test_example_4_retain_keys_on_keyed_list() -> None:
    patch = containers_patch({"name": "web", "env": [{"name": "A", "value": "9"}]})
    tags = {CONTAINERS: KEY_NAME, (*CONTAINERS, 0, "env"): {"patchStrategy": "retainKeys"}}
    result = unify(webservice(), patch, tags)
    assert containers_of(result)[0]["env"] == [{"name": "A", "value": "9"}]


def test_example_5_replace_list() -> None:
    patch = containers_patch({"name": "web", "env": [{"name": "C", "value": "3"}]})
    tags = {CONTAINERS: KEY_NAME, (*CONTAINERS, 0, "env"): {"patchStrategy": "replace"}}
    result = unify(webservice(), patch, tags)
    assert containers_of(result) == [{"name": "web", "image": "nginx", "env": [{"name": "C", "value": "3"}]}]


def test_example_6_no_key_is_positional() -> None:
    patch = containers_patch({"resources": {"limits": {"cpu": "1"}}})
    result = unify(webservice(), patch)
    assert containers_of(result)[0]["resources"] == {"limits": {"cpu": "1"}}
    assert containers_of(result)[0]["name"] == "web"

    # Upstream CUE rejects a closed 1-element patch against 2 base items; the patch arrives here as
    # data without its `...`, so a shorter list is taken as open: container 0 only is patched.
    base = webservice()
    containers_of(base).append({"name": "sidecar", "image": "busybox"})
    result = unify(base, patch)
    assert containers_of(result)[0]["resources"] == {"limits": {"cpu": "1"}}
    assert containers_of(result)[1] == {"name": "sidecar", "image": "busybox"}


def test_example_7_keyed_but_key_missing_falls_back_to_position() -> None:
    patch = containers_patch({"resources": {"requests": {"memory": "2Gi"}}})
    result = unify(webservice(), patch, {CONTAINERS: KEY_NAME})
    assert containers_of(result) == [
        {
            "name": "web",
            "image": "nginx",
            "env": [{"name": "A", "value": "1"}],
            "resources": {"requests": {"memory": "2Gi"}},
        }
    ]


def test_example_8_retain_keys_on_scalar_overrides() -> None:
    base = {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1, "paused": False}}
    patch = {"spec": {"replicas": 3}}
    result = unify(base, patch, {("spec", "replicas"): {"patchStrategy": "retainKeys"}})
    assert result == {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3, "paused": False}}
    with pytest.raises(PatchError, match="conflicting values 3 and 1"):
        unify(base, patch)


def test_example_9_retain_keys_replaces_struct() -> None:
    base = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}, "replicas": 2}}
    patch = {"spec": {"strategy": {"type": "Recreate"}}}
    result = unify(base, patch, {("spec", "strategy"): {"patchStrategy": "retainKeys"}})
    assert result == {"spec": {"strategy": {"type": "Recreate"}, "replicas": 2}}


def test_example_10_json_merge_patch_labels() -> None:
    base = {
        "metadata": {"name": "web", "labels": {"old": "x", "keep": "y"}},
        "spec": {"template": {"metadata": {"labels": {"old": "x", "app": "web"}}}},
    }
    patch = {
        "metadata": {"labels": {"team": "a", "old": None}},
        "spec": {"template": {"metadata": {"labels": {"team": "a", "old": None}}}},
    }
    result = unify(base, patch, {(): {"patchStrategy": "jsonMergePatch"}})
    assert result == {
        "metadata": {"name": "web", "labels": {"keep": "y", "team": "a"}},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "team": "a"}}}},
    }


def test_example_11_json_patch() -> None:
    base = webservice()
    base["spec"]["replicas"] = 1
    patch = {
        "operations": [
            {"op": "replace", "path": "/spec/replicas", "value": 5},
            {"op": "remove", "path": "/spec/template/spec"},
        ]
    }
    result = unify(base, patch, {(): {"patchStrategy": "jsonPatch"}})
    assert result == {
        "spec": {"selector": {"matchLabels": {"app.oam.dev/component": "web"}}, "template": {}, "replicas": 5}
    }


# --- rebuilt from operation_test.go: TestPatch ----------------------------------------------------


def test_untagged_lists_merge_by_position() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"name": "x1"}, {"name": "x2", "image": "pause:0.1"}]}
    assert unify(base, patch) == {"containers": [{"name": "x1"}, {"name": "x2", "image": "pause:0.1"}]}


def test_untagged_lists_in_other_order_conflict_everywhere() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"name": "x2"}, {"name": "x1"}]}
    with pytest.raises(PatchError) as caught:
        unify(base, patch)
    assert caught.value.path == "containers[0].name"
    assert caught.value.message == 'conflicting values "x2" and "x1"'
    assert caught.value.problems == (
        ("containers[0].name", 'conflicting values "x2" and "x1"'),
        ("containers[1].name", 'conflicting values "x1" and "x2"'),
    )


def test_keyed_list_in_other_order_keeps_base_order() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"name": "x2"}, {"name": "x1"}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == base


def test_base_items_without_key_shift_the_slots() -> None:
    # The base item lacks `name`, so it gets no slot: both patch items are "new", and the first
    # lands on the base item by position.
    base = {"containers": [{"namex": "x1"}]}
    patch = {"containers": [{"name": "x2"}, {"name": "x1"}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == {
        "containers": [{"namex": "x1", "name": "x2"}, {"name": "x1"}]
    }


def test_unmatched_patch_items_are_appended_in_patch_order() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"name": "x4"}, {"name": "x3"}, {"name": "x1"}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == {
        "containers": [{"name": "x1"}, {"name": "x2"}, {"name": "x4"}, {"name": "x3"}]
    }


def test_no_patch_item_has_the_key_so_merge_by_position() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"noname": "x3"}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == {
        "containers": [{"name": "x1", "noname": "x3"}, {"name": "x2"}]
    }


def test_patch_items_without_the_key_are_dropped() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2"}]}
    patch = {"containers": [{"noname": "x3"}, {"name": "x1"}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == base


def test_nested_list_inherits_the_key() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2", "envs": [{"name": "OPS"}]}]}
    patch = {
        "containers": [{"name": "x2", "envs": [{"name": "USER", "value": "DEV"}, {"name": "OPS", "value": "OAM"}]}]
    }
    assert unify(base, patch, {("containers",): KEY_NAME}) == {
        "containers": [
            {"name": "x1"},
            {"name": "x2", "envs": [{"name": "OPS", "value": "OAM"}, {"name": "USER", "value": "DEV"}]},
        ]
    }


def test_nearer_patch_key_overrides_inherited_one() -> None:
    base = {"containers": [{"name": "x1"}, {"name": "x2", "envs": [{"key": "OPS"}]}]}
    patch = {"containers": [{"name": "x2", "envs": [{"key": "USER", "value": "DEV"}, {"key": "OPS", "value": "OAM"}]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "envs"): {"patchKey": "key"}}
    assert unify(base, patch, tags) == {
        "containers": [
            {"name": "x1"},
            {"name": "x2", "envs": [{"key": "OPS", "value": "OAM"}, {"key": "USER", "value": "DEV"}]},
        ]
    }


def test_tags_are_found_by_patch_position_not_result_position() -> None:
    # The patch item at index 0 lands at index 1 of the result; its `envs` tag is at patch index 0.
    base = {"containers": [{"name": "x1", "envs": [{"key": "A"}]}, {"name": "x2", "envs": [{"key": "B"}]}]}
    patch = {"containers": [{"name": "x2", "envs": [{"key": "C"}]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "envs"): {"patchKey": "key"}}
    assert unify(base, patch, tags)["containers"][1]["envs"] == [{"key": "B"}, {"key": "C"}]


def test_dotted_patch_key() -> None:
    base = {"envFrom": [{"secretRef": {"name": "nginx-rds"}}]}
    patch = {"envFrom": [{"secretRef": {"name": "nginx-redis"}}]}
    assert unify(base, patch, {("envFrom",): {"patchKey": "secretRef.name"}}) == {
        "envFrom": [{"secretRef": {"name": "nginx-rds"}}, {"secretRef": {"name": "nginx-redis"}}]
    }


def test_dotted_patch_key_below_keyed_containers() -> None:
    base = {"containers": [{"name": "c1"}, {"name": "c2", "envFrom": [{"secretRef": {"name": "nginx-rds"}}]}]}
    patch = {"containers": [{"name": "c2", "envFrom": [{"secretRef": {"name": "nginx-redis"}}]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "envFrom"): {"patchKey": "secretRef.name"}}
    assert unify(base, patch, tags) == {
        "containers": [
            {"name": "c1"},
            {"name": "c2", "envFrom": [{"secretRef": {"name": "nginx-rds"}}, {"secretRef": {"name": "nginx-redis"}}]},
        ]
    }


def test_longer_untagged_list_extends_and_sibling_list_merges_by_key() -> None:
    base = {
        "containers": [{"volumeMounts": [{"name": "k1", "path": "p1"}, {"name": "k1", "path": "p2"}]}],
        "volumes": [{"name": "x1", "value": "v1"}, {"name": "x2", "value": "v2"}],
    }
    patch = {
        "volumes": [{"name": "x1", "value": "v1"}, {"name": "x3", "value": "x2"}],
        "containers": [
            {"volumeMounts": [{"name": "k1", "path": "p1"}, {"name": "k1", "path": "p2"}, {"name": "k2", "path": "p3"}]}
        ],
    }
    assert unify(base, patch, {("volumes",): KEY_NAME}) == {
        "containers": [
            {"volumeMounts": [{"name": "k1", "path": "p1"}, {"name": "k1", "path": "p2"}, {"name": "k2", "path": "p3"}]}
        ],
        "volumes": [{"name": "x1", "value": "v1"}, {"name": "x2", "value": "v2"}, {"name": "x3", "value": "x2"}],
    }


def test_multi_key_appends_both_kinds() -> None:
    base = {
        "containers": [
            {"name": "c1"},
            {"name": "c2", "envFrom": [{"secretRef": {"name": "nginx-rds"}}, {"configMapRef": {"name": "nginx-rds"}}]},
        ]
    }
    patch = {
        "containers": [
            {
                "name": "c2",
                "envFrom": [{"secretRef": {"name": "nginx-redis"}}, {"configMapRef": {"name": "nginx-redis"}}],
            }
        ]
    }
    tags = {
        ("containers",): KEY_NAME,
        ("containers", 0, "envFrom"): {"patchKey": "secretRef.name,configMapRef.name"},
    }
    assert unify(base, patch, tags)["containers"][1]["envFrom"] == [
        {"secretRef": {"name": "nginx-rds"}},
        {"configMapRef": {"name": "nginx-rds"}},
        {"secretRef": {"name": "nginx-redis"}},
        {"configMapRef": {"name": "nginx-redis"}},
    ]


def test_tag_on_a_list_inside_a_positional_item() -> None:
    base = {"containers": [{"name": "x1"}]}
    patch = {"containers": [{"env": [{"name": "k", "value": "v"}]}]}
    assert unify(base, patch, {("containers", 0, "env"): KEY_NAME}) == {
        "containers": [{"name": "x1", "env": [{"name": "k", "value": "v"}]}]
    }


# --- rebuilt from operation_test.go: TestStrategyPatch --------------------------------------------


def test_retain_keys_lands_on_the_tagged_field_only() -> None:
    # The tag sits on `type` (innermost label of `strategy: type:`), so `rollingUpdate` stays.
    base = {"spec": {"strategy": {"type": "rollingUpdate", "rollingUpdate": {"maxSurge": "30%"}}}}
    patch = {"spec": {"strategy": {"type": "recreate"}}}
    assert unify(base, patch, {("spec", "strategy", "type"): {"patchStrategy": "retainKeys"}}) == {
        "spec": {"strategy": {"type": "recreate", "rollingUpdate": {"maxSurge": "30%"}}}
    }


def test_retain_keys_on_keyed_list_replaces_matched_item() -> None:
    base = {"volumes": [{"name": "test-volume", "cinder": {"volumeID": "<volume id>", "fsType": "ext4"}}]}
    patch = {"volumes": [{"name": "test-volume", "configMap": {"name": "conf-name"}}]}
    tags = {("volumes",): {"patchStrategy": "retainKeys", "patchKey": "name"}}
    assert unify(base, patch, tags) == {"volumes": [{"name": "test-volume", "configMap": {"name": "conf-name"}}]}


def test_retain_keys_on_keyed_list_keeps_unmatched_items() -> None:
    base = {
        "volumes": [
            {"name": "empty-volume", "emptyDir": {}},
            {"name": "test-volume", "cinder": {"volumeID": "<volume id>", "fsType": "ext4"}},
        ]
    }
    patch = {"volumes": [{"name": "test-volume", "configMap": {"name": "conf-name"}}]}
    tags = {("volumes",): {"patchStrategy": "retainKeys", "patchKey": "name"}}
    assert unify(base, patch, tags) == {
        "volumes": [
            {"name": "empty-volume", "emptyDir": {}},
            {"name": "test-volume", "configMap": {"name": "conf-name"}},
        ]
    }


def test_retain_keys_on_nested_list_with_inherited_key() -> None:
    base = {"containers": [{"name": "c1", "image": "image1"}, {"name": "c2", "envs": [{"name": "e1", "value": "v1"}]}]}
    patch = {"containers": [{"name": "c2", "envs": [{"name": "e1", "value": "v2"}]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "envs"): {"patchStrategy": "retainKeys"}}
    assert unify(base, patch, tags) == {
        "containers": [{"name": "c1", "image": "image1"}, {"name": "c2", "envs": [{"name": "e1", "value": "v2"}]}]
    }


def test_retain_keys_on_struct_replaces_it_and_key_is_inherited() -> None:
    base = {
        "spec": {
            "containers": [{"name": "c1", "image": "image1"}, {"name": "c2", "envs": [{"name": "e1", "value": "v1"}]}]
        }
    }
    patch = {"spec": {"containers": [{"name": "c2", "envs": [{"name": "e1", "value": "v2"}]}]}}
    tags = {("spec",): {"patchKey": "name", "patchStrategy": "retainKeys"}}
    assert unify(base, patch, tags) == {
        "spec": {"containers": [{"name": "c2", "envs": [{"name": "e1", "value": "v2"}]}]}
    }


def test_retain_keys_on_scalars_top_level_and_nested() -> None:
    base = {"kind": "Old", "metadata": {"name": "Old", "labels": {"keep": "true"}}}
    patch = {"kind": "New", "metadata": {"name": "New"}}
    tags = {("kind",): {"patchStrategy": "retainKeys"}, ("metadata", "name"): {"patchStrategy": "retainKeys"}}
    assert unify(base, patch, tags) == {"kind": "New", "metadata": {"name": "New", "labels": {"keep": "true"}}}


def test_json_merge_patch_replaces_lists() -> None:
    base = {"spec": {"containers": [{"name": "c1", "image": "image1"}, {"name": "c2"}]}}
    patch = {"spec": {"containers": [{"name": "c3", "image": "image3"}]}}
    result = unify(base, patch, {(): {"patchStrategy": "jsonMergePatch"}})
    assert result == {"spec": {"containers": [{"name": "c3", "image": "image3"}]}}


def test_json_patch_add_inserts_before_index() -> None:
    base = {"spec": {"containers": [{"name": "c1", "image": "image1"}]}}
    patch = {"operations": [{"op": "add", "path": "/spec/containers/0", "value": {"name": "c4", "image": "image4"}}]}
    result = unify(base, patch, {(): {"patchStrategy": "jsonPatch"}})
    assert result == {"spec": {"containers": [{"name": "c4", "image": "image4"}, {"name": "c1", "image": "image1"}]}}


def test_replace_inside_keyed_list() -> None:
    base = {"spec": {"containers": [{"name": "c1", "envs": [{"name": "e1", "value": "v1"}]}]}}
    patch = {"spec": {"containers": [{"name": "c1", "envs": [{"name": "e1", "value": "v2"}]}]}}
    tags = {("spec",): KEY_NAME, ("spec", "containers", 0, "envs"): {"patchStrategy": "replace"}}
    assert unify(base, patch, tags) == {
        "spec": {"containers": [{"name": "c1", "envs": [{"name": "e1", "value": "v2"}]}]}
    }


# --- further edges of the same algorithm ----------------------------------------------------------


def test_multi_key_is_positional_when_base_is_not_grouped() -> None:
    # Open question 6: slots are made key by key (secretRef first), then unified by position, so on
    # a base that lists configMapRef first each patch item lands on the other kind's item.
    base = {"envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}]}
    patch = {
        "envFrom": [{"secretRef": {"name": "s", "optional": True}}, {"configMapRef": {"name": "c", "optional": True}}]
    }
    tags = {("envFrom",): {"patchKey": "secretRef.name,configMapRef.name"}}
    assert unify(base, patch, tags) == {
        "envFrom": [
            {"configMapRef": {"name": "c"}, "secretRef": {"name": "s", "optional": True}},
            {"secretRef": {"name": "s"}, "configMapRef": {"name": "c", "optional": True}},
        ]
    }


def test_multi_key_with_a_key_no_patch_item_has_is_positional() -> None:
    base = {"envFrom": [{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}]}
    patch = {"envFrom": [{"secretRef": {"name": "s2"}}]}
    tags = {("envFrom",): {"patchKey": "secretRef.name,configMapRef.name"}}
    assert unify(base, patch, tags) == {
        "envFrom": [{"configMapRef": {"name": "c"}, "secretRef": {"name": "s2"}}, {"secretRef": {"name": "s"}}]
    }


def test_key_with_a_struct_value_disables_key_merge() -> None:
    base = {"items": [{"id": {"a": 1}}, {"id": {"a": 2}}]}
    patch = {"items": [{"id": {"a": 1}, "x": True}]}
    assert unify(base, patch, {("items",): {"patchKey": "id"}}) == {
        "items": [{"id": {"a": 1}, "x": True}, {"id": {"a": 2}}]
    }


def test_key_values_compare_by_kind() -> None:
    base = {"ports": [{"port": 80, "name": "http"}]}
    patch = {"ports": [{"port": "80", "name": "text"}]}
    assert unify(base, patch, {("ports",): {"patchKey": "port"}}) == {
        "ports": [{"port": 80, "name": "http"}, {"port": "80", "name": "text"}]
    }


def test_empty_patch_key_stops_inheritance() -> None:
    base = {"containers": [{"name": "web", "args": ["a", "b"], "env": [{"name": "A"}, {"name": "B"}]}]}
    patch = {"containers": [{"name": "web", "env": [{"name": "B", "value": "2"}]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "env"): {"patchKey": ""}}
    with pytest.raises(PatchError) as caught:
        unify(base, patch, tags)
    assert caught.value.path == "containers[0].env[0].name"


def test_scalar_lists_under_a_key_merge_by_position() -> None:
    base = {"containers": [{"name": "web", "args": ["a", "b"]}]}
    patch = {"containers": [{"name": "web", "args": ["a", "b", "c"]}]}
    assert unify(base, patch, {("containers",): KEY_NAME}) == {"containers": [{"name": "web", "args": ["a", "b", "c"]}]}


def test_retain_keys_on_struct_still_rewrites_keyed_lists_inside() -> None:
    # Upstream unifies the patch with itself below the replaced field, so a keyed list there still
    # drops items lacking the key.
    base = {"spec": {"volumes": [{"name": "old"}]}}
    patch = {"spec": {"volumes": [{"name": "v1"}, {"emptyDir": {}}]}}
    tags = {("spec",): {"patchStrategy": "retainKeys"}, ("spec", "volumes"): KEY_NAME}
    assert unify(base, patch, tags) == {"spec": {"volumes": [{"name": "v1"}]}}


def test_retain_keys_without_base_field_adds_it() -> None:
    base = {"spec": {"replicas": 1}}
    patch = {"spec": {"strategy": {"type": "Recreate"}}}
    assert unify(base, patch, {("spec", "strategy"): {"patchStrategy": "retainKeys"}}) == {
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}}
    }


def test_open_strategy_is_inert() -> None:
    base = {"containers": [{"name": "web", "command": ["run"]}]}
    patch = {"containers": [{"name": "web", "command": ["run"]}]}
    tags = {("containers",): KEY_NAME, ("containers", 0, "command"): {"patchStrategy": "open"}}
    assert unify(base, patch, tags) == base


def test_mismatched_types_conflict() -> None:
    with pytest.raises(PatchError) as caught:
        unify({"spec": {"ports": [1]}}, {"spec": {"ports": {"http": 80}}})
    assert caught.value.path == "spec.ports"
    assert caught.value.message == "conflicting values [1] and {http:80} (mismatched types list and struct)"
    with pytest.raises(PatchError, match=r"conflicting values 1 and 1.0 \(mismatched types int and float\)"):
        strategy_unify({"a": 1}, {"a": 1.0}, {})
    with pytest.raises(PatchError, match=r"mismatched types int and bool"):
        strategy_unify({"a": 1}, {"a": True}, {})


def test_error_paths_quote_keys_that_are_not_identifiers() -> None:
    with pytest.raises(PatchError) as caught:
        unify({"metadata": {"labels": {"app.oam.dev/name": "a"}}}, {"metadata": {"labels": {"app.oam.dev/name": "b"}}})
    assert caught.value.path == 'metadata.labels["app.oam.dev/name"]'


def test_root_tags_do_not_steer_the_default_strategy() -> None:
    base = {"containers": [{"name": "a"}]}
    patch = {"containers": [{"name": "a", "image": "x"}]}
    assert unify(base, patch, {(): {"patchKey": "image"}}) == {"containers": [{"name": "a", "image": "x"}]}


def test_output_shares_nothing_with_inputs() -> None:
    base = webservice()
    patch = containers_patch({"name": "log", "image": "fluentd", "env": [{"name": "X"}]})
    result = strategy_unify(base, patch, {CONTAINERS: KEY_NAME})
    containers_of(result)[0]["env"].append({"name": "Z"})
    containers_of(result)[1]["env"].append({"name": "Z"})
    assert base == webservice()
    assert containers_of(patch)[0]["env"] == [{"name": "X"}]


# --- JSON merge patch and JSON patch --------------------------------------------------------------


def test_json_merge_patch_prunes_nulls_in_new_values() -> None:
    base = {"a": {"b": 1}, "c": [1, 2], "d": None}
    patch = {
        "a": {"b": None, "e": {"f": None, "g": 1}},
        "c": {"x": None, "y": 2},
        "d": {"k": None},
        "n": [{"z": None}, None],
    }
    assert json_merge_patch(base, patch) == {"a": {"e": {"g": 1}}, "c": {"y": 2}, "d": {}, "n": [{}, None]}


def test_json_merge_patch_non_object_patch() -> None:
    assert json_merge_patch({"a": 1}, [{"b": None}]) == [{}]
    with pytest.raises(PatchError):
        json_merge_patch({"a": 1}, "scalar")


def test_json_patch_all_operations() -> None:
    base = {"a": {"b": [1, 2, 3]}, "c": "x"}
    ops = [
        {"op": "test", "path": "/c", "value": "x"},
        {"op": "add", "path": "/a/b/-", "value": 4},
        {"op": "add", "path": "/a/b/-1", "value": 5},
        {"op": "copy", "from": "/a/b", "path": "/copy"},
        {"op": "move", "from": "/c", "path": "/a/moved"},
        {"op": "replace", "path": "/a/b/0", "value": 0},
        {"op": "remove", "path": "/a/b/-1"},
        {"op": "add", "path": "/k~1v~0", "value": True},
        {"op": "test", "path": "/absent", "value": None},
    ]
    before = copy.deepcopy(base)
    assert json_patch(base, ops) == {
        "a": {"b": [0, 2, 3, 4], "moved": "x"},
        "copy": [1, 2, 3, 4, 5],
        "k/v~": True,
    }
    assert base == before


@pytest.mark.parametrize(
    ("ops", "path", "fragment"),
    [
        ([{"op": "remove", "path": "/spec/missing"}], "operations[0]", "does not exist"),
        (
            [{"op": "add", "path": "/a", "value": 1}, {"op": "add", "path": "/x/y", "value": 1}],
            "operations[1]",
            "does not exist",
        ),
        ([{"op": "replace", "path": "/spec/list/5", "value": 1}], "operations[0]", "out of range"),
        ([{"op": "test", "path": "/spec/replicas", "value": 2}], "operations[0]", "test failed"),
        ([{"op": "test", "path": "/spec/replicas", "value": 1.0}], "operations[0]", "test failed"),
        ([{"op": "merge", "path": "/spec"}], "operations[0]", "unknown operation"),
        ([{"op": "remove"}], "operations[0]", "string `path`"),
        ([{"op": "add", "path": "spec/x", "value": 1}], "operations[0]", "start with /"),
        ([{"op": "move", "from": "/spec", "path": "/spec/inner"}], "operations[0]", "does not exist"),
        (["not an op"], "operations[0]", "must be an object"),
    ],
)
def test_json_patch_errors(ops: list[Any], path: str, fragment: str) -> None:
    base = {"spec": {"replicas": 1, "list": [1]}}
    with pytest.raises(PatchError) as caught:
        json_patch(base, ops)
    assert caught.value.path == path
    assert fragment in caught.value.message
    assert base == {"spec": {"replicas": 1, "list": [1]}}


def test_json_patch_strategy_needs_operations() -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch({"a": 1}, {"ops": []}, {(): {"patchStrategy": "jsonPatch"}})
    assert caught.value.path == "operations"


def test_patch_error_is_an_input_error() -> None:
    from velapy.errors import EXIT_INVALID, VelapyError

    error = PatchError("spec.a", "conflicting values 2 and 1")
    assert isinstance(error, VelapyError)
    assert error.exit_code == EXIT_INVALID
    assert error.render() == "error: spec.a: conflicting values 2 and 1"
