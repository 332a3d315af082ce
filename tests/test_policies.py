"""velapy.compile.policies: override policies → the effective components (KubeVela's PatchComponents rules).

Pure Python (no engine): components and policies come from Application files written under
tmp_path, so located errors can be checked against real line numbers.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from velapy.compile.policies import (
    apply_override,
    apply_overrides,
    check_override_types,
    deep_merge,
    override_name_warnings,
)
from velapy.errors import EXIT_INVALID, InputError
from velapy.load.application import Application, Component, load_application
from velapy.load.definitions import Registry

APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  namespace: prod
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: nginx:1
        env: [{name: A, value: "1"}]
        labels: {team: a, tier: front}
      traits:
        - type: scaler
          properties: {replicas: 1}
        - type: labels
          properties: {a: "1"}
    - name: web-config
      type: k8s-objects
      properties:
        objects: []
    - name: worker
      type: worker
      properties:
        image: busybox
  policies:
"""


def app_with(tmp_path: Path, policies: str, extra: str = "") -> Application:
    """The app above with `policies` (YAML list items, indented by 4) under spec.policies."""
    path = tmp_path / "app.yaml"
    path.write_text(APP + textwrap.indent(textwrap.dedent(policies), "    "), encoding="utf-8")
    files = []
    if extra:
        (tmp_path / "policies.yaml").write_text(textwrap.dedent(extra), encoding="utf-8")
        files.append(str(tmp_path / "policies.yaml"))
    return load_application(str(path), files)


def by_name(comps: list[Component]) -> dict[str, Component]:
    return {c.name: c for c in comps}


def traits_of(c: Component) -> list[tuple[str, Any]]:
    return [(t.type, t.properties) for t in c.traits]


# deep_merge ---------------------------------------------------------------------------------------

def test_deep_merge_merges_maps_and_replaces_lists_and_scalars() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": "keep", "c": 3}
    patch = {"a": {"y": [9], "z": {"n": None}}, "c": None, "d": [{"k": 1}]}
    merged = deep_merge(base, patch)
    assert merged == {"a": {"x": 1, "y": [9], "z": {"n": None}}, "b": "keep", "c": None, "d": [{"k": 1}]}
    # neither side is changed, and the result shares no mutable value with the patch
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": "keep", "c": 3}
    merged["d"][0]["k"] = 2
    assert patch["d"] == [{"k": 1}]


def test_deep_merge_a_map_over_a_scalar_and_a_scalar_over_a_map_replace() -> None:
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": "x"}) == {"a": "x"}
    assert deep_merge([1, 2], [3]) == [3]


# apply_override -----------------------------------------------------------------------------------

def test_a_name_is_an_unanchored_pattern_and_merges_properties(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: web
                properties: {image: nginx:2, labels: {tier: back}, env: [{name: B, value: "2"}]}
        """)
    out = by_name(apply_override(app.components, app.policies[0]))
    assert [c.name for c in apply_override(app.components, app.policies[0])] == ["web", "web-config", "worker"]
    assert out["web"].properties == {"image": "nginx:2", "env": [{"name": "B", "value": "2"}],
                                     "labels": {"team": "a", "tier": "back"}}
    assert out["web"].raw["properties"] == out["web"].properties  # the raw component follows (context.components)
    # `web` also matches `web-config`, whose properties gain the patch's keys
    assert out["web-config"].properties == {"objects": [], "image": "nginx:2", "labels": {"tier": "back"},
                                            "env": [{"name": "B", "value": "2"}]}
    assert out["worker"] == app.components[2]  # untouched


def test_star_stands_for_any_text(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: "w*r"
                properties: {image: alpine}
        """)
    out = by_name(apply_override(app.components, app.policies[0]))
    assert out["worker"].properties == {"image": "alpine"}
    assert out["web"].properties["image"] == "nginx:1"


def test_traits_merge_by_type_disable_removes_and_new_types_are_appended(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: ^web$
                traits:
                  - type: scaler
                    properties: {replicas: 3}
                  - type: labels
                    disable: true
                  - type: annotations
                    properties: {note: x}
                  - type: sidecar
                    disable: true
        """)
    (web, *_rest) = apply_override(app.components, app.policies[0])
    assert traits_of(web) == [("scaler", {"replicas": 3}), ("annotations", {"note": "x"})]
    assert web.raw["traits"] == [{"type": "scaler", "properties": {"replicas": 3}},
                                 {"type": "annotations", "properties": {"note": "x"}}]
    # a changed or added trait is located in the policy that wrote it
    scaler, annotations = web.traits
    assert scaler.index == 0 and annotations.index == -1
    loc = app.trait_location(web, annotations, "properties")
    assert (loc.line, loc.path) == (39, "spec.policies[0].properties.components[0].traits[2].properties")
    assert app.trait_location(web, scaler).path == "spec.policies[0].properties.components[0].traits[0]"


def test_disabling_every_trait_drops_the_traits_key(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: ^web$
                traits: [{type: scaler, disable: true}, {type: labels, disable: true}]
        """)
    web = apply_override(app.components, app.policies[0])[0]
    assert web.traits == () and "traits" not in web.raw


def test_another_type_replaces_the_component(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: worker
                type: webservice
                properties: {image: redis}
                traits: [{type: scaler, properties: {replicas: 2}}, {type: labels, disable: true}]
        """)
    out = by_name(apply_override(app.components, app.policies[0]))
    worker = out["worker"]
    assert (worker.type, worker.properties) == ("webservice", {"image": "redis"})
    assert traits_of(worker) == [("scaler", {"replicas": 2})]
    assert worker.index == -1 and worker.depends_on == ()  # a new component, not the old one patched


def test_an_unmatched_lowercase_name_adds_a_component_an_uppercase_one_does_not(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: cache
                type: worker
                properties: {image: redis}
              - name: NOPE
                type: worker
        """)
    comps = apply_override(app.components, app.policies[0])
    assert [c.name for c in comps] == ["web", "web-config", "worker", "cache"]
    assert (comps[-1].type, comps[-1].properties, comps[-1].index) == ("worker", {"image": "redis"}, -1)


def test_an_entry_without_name_patches_every_component_of_its_type(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - type: worker
                properties: {cmd: [sleep]}
              - properties: {zone: z1}
        """)
    out = by_name(apply_override(app.components, app.policies[0]))
    assert out["worker"].properties == {"image": "busybox", "cmd": ["sleep"], "zone": "z1"}
    assert out["web"].properties["zone"] == "z1" and "cmd" not in out["web"].properties


def test_selector_keeps_the_listed_components_in_their_order(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            selector: [worker, web, ghost]
        """)
    assert [c.name for c in apply_override(app.components, app.policies[0])] == ["web", "worker"]
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            selector: []
        """)
    assert apply_override(app.components, app.policies[0]) == []


def test_apply_overrides_composes_left_to_right(tmp_path: Path, registry: Registry) -> None:
    app = app_with(tmp_path, """\
        - name: first
          type: override
          properties:
            components: [{name: ^web$, properties: {image: one}, traits: [{type: scaler, properties: {replicas: 5}}]}]
        - name: second
          type: override
          properties:
            components: [{name: ^web$, properties: {image: two}}]
            selector: [web]
        """)
    comps = apply_overrides(app, app.components, app.policies, registry)
    assert [c.name for c in comps] == ["web"]
    assert comps[0].properties["image"] == "two" and traits_of(comps[0])[0] == ("scaler", {"replicas": 5})
    reverse = apply_overrides(app, app.components, app.policies[::-1], registry)
    assert reverse[0].properties["image"] == "one"
    assert apply_overrides(app, app.components, (), registry) == list(app.components)


# bad input ----------------------------------------------------------------------------------------

def test_unknown_types_are_located_errors_with_a_suggestion(tmp_path: Path, registry: Registry) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: web
                type: webservise
                traits: [{type: scalr}, {type: labels}]
        """)
    assert len(check_override_types(app, app.policies[0], registry)) == 2
    with pytest.raises(InputError) as info:
        apply_overrides(app, app.components, app.policies, registry)
    assert info.value.exit_code == EXIT_INVALID
    first, second = info.value.diagnostics
    assert first.message == 'override policy o: unknown component type "webservise"'
    assert first.hint == 'did you mean "webservice"?'
    assert second.message == 'override policy o: unknown trait type "scalr"' and second.hint == 'did you mean "scaler"?'
    assert (first.location.file, first.location.line) == (str(tmp_path / "app.yaml"), 32)


def test_an_invalid_name_pattern_is_a_located_error_not_a_crash(tmp_path: Path, registry: Registry) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: "web["
                properties: {image: x}
        """)
    with pytest.raises(InputError) as info:
        apply_overrides(app, app.components, app.policies, registry)
    (d,) = info.value.diagnostics
    assert info.value.exit_code == EXIT_INVALID
    assert d.message.startswith("override policy o: component name 'web[' is not a valid regular expression")
    assert (d.location.line, d.location.column, d.location.path) == \
        (32, 19, "spec.policies[0].properties.components[0].name")


def test_a_standalone_policy_is_located_in_its_own_file(tmp_path: Path, registry: Registry) -> None:
    app = app_with(tmp_path, "[]\n", extra="""\
        apiVersion: core.oam.dev/v1alpha1
        kind: Policy
        metadata:
          name: outside
        type: override
        properties:
          components:
            - name: web
              traits: [{type: nope}]
        """)
    (policy,) = app.external_policies
    (d,) = check_override_types(app, policy, registry)
    assert d.message == 'override policy outside: unknown trait type "nope"'
    assert (d.location.file, d.location.line, d.location.path) == \
        (str(tmp_path / "policies.yaml"), 8, "properties.components[0]")
    # the name `web` matches web and web-config: a warning located in the standalone file
    (w,) = override_name_warnings(app)
    assert (w.location.file, w.location.path) == (str(tmp_path / "policies.yaml"), "properties.components[0].name")


# override_name_warnings ---------------------------------------------------------------------------

def test_a_plain_name_matching_more_than_itself_is_warned_with_the_anchored_spelling(tmp_path: Path) -> None:
    app = app_with(tmp_path, """\
        - name: o
          type: override
          properties:
            components:
              - name: web
              - name: ^web$
              - name: worker
              - name: "we*"
              - name: "bad["
              - name: eb
        - name: t
          type: topology
          properties: {clusters: [local]}
        """)
    # two warnings: the anchored spelling the hint recommends and names written as patterns are not warned about
    exact, partial = override_name_warnings(app)
    assert exact.message == ("override policy o: component name 'web' is a regular expression in KubeVela and "
                             "matches web, web-config")
    assert exact.hint == "write '^web$' to change only web"
    assert (exact.location.line, exact.location.column, exact.location.path) == \
        (32, 19, "spec.policies[0].properties.components[0].name")
    # `eb` names no component but patches web and web-config (a new component `eb` was probably meant)
    assert partial.message.endswith("name 'eb' is a regular expression in KubeVela and matches web, web-config")
    assert partial.hint == "anchor it (^...$) to match exactly the components you mean"
    assert partial.location.path == "spec.policies[0].properties.components[5].name"
