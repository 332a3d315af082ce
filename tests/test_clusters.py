"""Cluster inventory loading and topology placement (no engine needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from velapy.compile.placement import HUB_PLACEMENT, Placement, deploy_placements, topology_placements
from velapy.errors import Diagnostic, InputError
from velapy.load.application import Policy
from velapy.load.clusters import HUB, Cluster, Inventory, hub_only, load_inventory
from velapy.load.yamlio import load_documents

INVENTORY = """\
clusters:
  - name: prod-bj
    labels: {env: prod, region: cn-beijing}
    version: "1.28"
    kubeconfig: ~/.kube/bj.yaml
    context: bj
    identity: {user: alice, groups: ["kubevela:dev"]}
  - name: prod-hz
    labels: {env: prod, region: cn-hangzhou}
  - name: dev-1
    labels: {env: dev}
    version: "v1.18.4+aliyun"
  - name: local
    version: "1.30"
"""


def write(tmp_path: Path, text: str, name: str = "clusters.yaml") -> str:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(p)


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    return load_inventory(write(tmp_path, INVENTORY))


def errors_of(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [d.render() for d in exc.value.diagnostics]


def test_inventory_fields_and_hub_first(inventory: Inventory) -> None:
    assert inventory.names() == ["local", "prod-bj", "prod-hz", "dev-1"]
    bj = inventory.get("prod-bj")
    assert bj is not None
    assert dict(bj.labels) == {"env": "prod", "region": "cn-beijing"}
    assert (bj.kubeconfig, bj.context, bj.version) == ("~/.kube/bj.yaml", "bj", "1.28")
    assert bj.identity is not None and bj.identity.user == "alice" and bj.identity.groups == ("kubevela:dev",)
    assert bj.location.line == 2
    assert inventory.hub.version == "1.30"


def test_cluster_version_falls_back_to_the_hub(inventory: Inventory) -> None:
    assert inventory.version_of("prod-bj").minor == 28
    assert inventory.version_of("prod-hz").minor == 30  # no version: the hub's
    dev = inventory.version_of("dev-1")
    assert (dev.major, dev.minor) == ("1", 18)
    assert hub_only().version_of(HUB).minor == 0  # nothing known: like dry-run


def test_hub_is_added_when_not_listed(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path, "clusters:\n  - name: a\n"))
    assert inv.names() == ["local", "a"]
    assert hub_only().names() == ["local"]


def test_select_matches_every_label_sorted_members_only(inventory: Inventory) -> None:
    assert [c.name for c in inventory.select({"env": "prod"})] == ["prod-bj", "prod-hz"]
    assert [c.name for c in inventory.select({"env": "prod", "region": "cn-hangzhou"})] == ["prod-hz"]
    assert [c.name for c in inventory.select({})] == ["dev-1", "prod-bj", "prod-hz"]  # never the hub
    assert inventory.select({"env": "staging"}) == []


def test_schema_problems_are_located_and_all_reported(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        clusters:
          - labels: {env: prod}
          - name: Prod_1
            version: 1.20
            labels: {zone: 3}
            kubecfg: x
        """)
    with pytest.raises(InputError) as exc:
        load_inventory(path)
    got = errors_of(exc)
    assert len(got) == 5
    assert got[0].startswith(f"{path}:2:5: clusters[0]: missing required field name")
    assert f"{path}:3:11: clusters[1].name: invalid value 'Prod_1'" in got[1]
    assert "clusters[1].version: expected a string, found the number 1.2" in got[2]
    assert "an unquoted 1.20 is the number 1.2" in got[2]
    assert "clusters[1].labels.zone: expected a string, found the number 3" in got[3]
    assert 'unknown field kubecfg\n  hint: did you mean "kubeconfig"?' in got[4]


def test_duplicate_names_and_hub_labels(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        clusters:
          - name: a
          - name: a
          - name: local
            labels: {env: hub}
        """)
    with pytest.raises(InputError) as exc:
        load_inventory(path)
    got = errors_of(exc)
    assert got[0].startswith(f"{path}:3:11: clusters[1].name: cluster a is listed twice (first at line 2)")
    assert "the hub cluster local cannot have labels" in got[1]


def test_not_a_mapping_or_several_documents(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_inventory(write(tmp_path, "- name: a\n"))
    assert "expected a mapping, found a list" in errors_of(exc)[0]
    with pytest.raises(InputError) as exc:
        load_inventory(write(tmp_path, "clusters: []\n---\nclusters: []\n"))
    assert "holds one YAML document, found 2" in errors_of(exc)[0]


# ----------------------------------------------------------------------------------------------
# placement


def topology(props: Any, name: str = "topo") -> Policy:
    doc = load_documents(f"properties: {props!r}\n".replace("'", '"'), "policy.yaml")[0]
    return Policy(name, "topology", doc.data["properties"], -1, doc)


def test_clusters_by_name_keep_their_order(inventory: Inventory) -> None:
    got = topology_placements(topology({"clusters": ["prod-hz", "local", "prod-bj"]}), inventory)
    assert got == [Placement("prod-hz"), Placement("local"), Placement("prod-bj")]


def test_clusters_key_wins_over_labels_even_when_empty(inventory: Inventory) -> None:
    assert topology_placements(topology({"clusters": [], "clusterLabelSelector": {"env": "prod"}}), inventory) == []


def test_label_selector_and_namespace(inventory: Inventory) -> None:
    got = topology_placements(topology({"clusterLabelSelector": {"env": "prod"}, "namespace": "edge"}), inventory)
    assert got == [Placement("prod-bj", "edge"), Placement("prod-hz", "edge")]
    assert [p.key() for p in got] == ["prod-bj/edge", "prod-hz/edge"]


def test_no_clusters_no_selector_is_the_hub(inventory: Inventory) -> None:
    assert topology_placements(topology({"namespace": "ops"}), inventory) == [Placement(HUB, "ops")]
    assert deploy_placements([], inventory) == [HUB_PLACEMENT]


def test_unknown_cluster_is_located_with_a_suggestion(inventory: Inventory) -> None:
    with pytest.raises(InputError) as exc:
        topology_placements(topology({"clusters": ["prod-bj", "prod-hx"]}), inventory)
    (msg,) = errors_of(exc)
    assert msg.startswith("policy.yaml:1:38: properties.clusters[1]: failed to get cluster prod-hx")
    assert 'did you mean "prod-hz"?' in msg


def test_no_matching_cluster_errors_unless_allow_empty(inventory: Inventory) -> None:
    with pytest.raises(InputError) as exc:
        topology_placements(topology({"clusterLabelSelector": {"env": "qa"}}), inventory)
    (msg,) = errors_of(exc)
    assert "failed to find any cluster matches given labels {env: qa}" in msg
    assert "prod-bj {env: prod, region: cn-beijing}" in msg and "allowEmpty: true" in msg
    assert topology_placements(topology({"clusterLabelSelector": {"env": "qa"}, "allowEmpty": True}),
                               inventory) == []


def test_label_values_must_be_strings_and_unknown_fields(inventory: Inventory) -> None:
    with pytest.raises(InputError) as exc:
        topology_placements(topology({"clusterLabelSelector": {"gpu": True}, "cluster": ["a"]}), inventory)
    got = errors_of(exc)
    assert any("unknown field cluster" in g for g in got)
    assert any("clusterLabelSelector must map label keys to string values" in g for g in got)


def test_deprecated_cluster_selector_is_ignored_with_a_warning(inventory: Inventory) -> None:
    warnings: list[Diagnostic] = []
    got = topology_placements(topology({"clusterSelector": {"env": "prod"}}), inventory, warnings)
    assert got == [Placement(HUB)]
    assert "clusterSelector is deprecated and ignored" in warnings[0].message


def test_deploy_unions_topologies_without_repeats(inventory: Inventory) -> None:
    a = topology({"clusters": ["prod-bj", "local"]}, "a")
    b = topology({"clusterLabelSelector": {"env": "prod"}}, "b")
    c = topology({"clusterLabelSelector": {"env": "prod"}, "namespace": "x"}, "c")
    got = deploy_placements([a, b, c], inventory)
    assert [p.key() for p in got] == ["prod-bj", "local", "prod-hz", "prod-bj/x", "prod-hz/x"]


def test_deploy_reports_problems_of_every_topology(inventory: Inventory) -> None:
    a = topology({"clusters": ["nope"]}, "a")
    b = topology({"clusterLabelSelector": {"env": "nope"}}, "b")
    with pytest.raises(InputError) as exc:
        deploy_placements([a, b], inventory)
    assert len(exc.value.diagnostics) == 2


def test_cluster_is_hub() -> None:
    assert Cluster("local").is_hub and not Cluster("a").is_hub
