"""Override policies: components + override policy properties → the effective components.

KubeVela's rules (semantics §5.2): each patch entry in order; `name` is an unanchored pattern
(`*` → `.*`); a different `type` replaces the component; otherwise properties are deep-merged
(maps merge, lists and scalars replace, null sets null) and traits are merged by type (properties
merged, `disable: true` removes, new types appended); a name that matches nothing and has a
lowercase letter adds a component; `selector` keeps the listed components. Several override
policies compose left to right.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from velapy.errors import Diagnostic, InputError
from velapy.load.application import Application, Component, Policy, Trait, TraitOrigin
from velapy.load.definitions import Registry

TOPOLOGY = "topology"
OVERRIDE = "override"
_PATTERN_SYNTAX = frozenset("^$*+?[](){}|\\")  # a name with one of these is written as a pattern


def deep_merge(base: Any, patch: Any) -> Any:
    """mergo WithOverride: maps merge recursively, everything else (lists included) is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = deep_merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(patch)


def _traits_raw(traits: Sequence[Trait]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for t in traits:
        d: dict[str, Any] = {"type": t.type}
        if t.properties is not None:
            d["properties"] = t.properties
        out.append(d)
    return out


def _component(name: str, ctype: str, props: Any, traits: list[Trait], base: Component | None) -> Component:
    raw: dict[str, Any] = dict(base.raw) if base is not None else {}
    raw.update({"name": name, "type": ctype})
    if props is not None:
        raw["properties"] = props
    else:
        raw.pop("properties", None)
    if traits:
        raw["traits"] = _traits_raw(traits)
    else:
        raw.pop("traits", None)
    renumbered = tuple(Trait(t.type, t.properties, t.index, t.origin) for t in traits)
    return Component(name, ctype, props, renumbered, base.depends_on if base else (), raw,
                     base.index if base else -1)


def _origin(policy: Policy | None, entry: int, j: int) -> TraitOrigin | None:
    if policy is None:
        return None
    base: tuple[str | int, ...] = ("properties", "components", entry, "traits", j)
    return TraitOrigin(policy.doc, ("spec", "policies", policy.index, *base) if policy.index >= 0 else base,
                       policy.name)


def _merge_component(base: Component, patch: dict[str, Any], policy: Policy | None = None,
                     entry: int = 0) -> Component:
    props = base.properties
    if "properties" in patch and patch["properties"] is not None:
        props = deep_merge(props if props is not None else {}, patch["properties"])
    # duplicate trait types in the base collapse to the last one, shown at each original position
    by_type: dict[str, Trait] = {t.type: t for t in base.traits}
    order: list[str] = [t.type for t in base.traits]
    removed: set[str] = set()
    for j, pt in enumerate(patch.get("traits") or []):
        ttype = str(pt.get("type", ""))
        if ttype in by_type:
            if pt.get("disable"):
                removed.add(ttype)
                continue
            old = by_type[ttype]
            tprops = old.properties
            if pt.get("properties") is not None:
                tprops = deep_merge(tprops if tprops is not None else {}, pt["properties"])
            by_type[ttype] = Trait(ttype, tprops, old.index, _origin(policy, entry, j) or old.origin)
        elif not pt.get("disable"):
            by_type[ttype] = Trait(ttype, pt.get("properties"), -1, _origin(policy, entry, j))
            order.append(ttype)
    traits = [by_type[t] for t in order if t not in removed]
    return _component(base.name, base.type, props, traits, base)


def _new_component(patch: dict[str, Any], name: str, policy: Policy | None = None, entry: int = 0) -> Component:
    traits = [Trait(str(t.get("type", "")), t.get("properties"), -1, _origin(policy, entry, j))
              for j, t in enumerate(patch.get("traits") or []) if not t.get("disable")]
    return _component(name, str(patch.get("type", "")), patch.get("properties"), traits, None)


def apply_override(components: Sequence[Component], policy: Policy) -> list[Component]:
    """One override policy applied to the components (KubeVela's PatchComponents)."""
    props = policy.properties or {}
    comps = list(components)
    for i, entry in enumerate(props.get("components") or []):
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or "")
        ptype = str(entry.get("type") or "")
        if not name:
            comps = [_merge_component(c, entry, policy, i) if (not ptype or c.type == ptype) else c for c in comps]
            continue
        pattern = re.compile(name.replace("*", ".*"))
        matched = False
        out: list[Component] = []
        for c in comps:
            if pattern.search(c.name):
                matched = True
                if ptype and ptype != c.type:
                    out.append(_new_component(entry, name, policy, i))
                else:
                    out.append(_merge_component(c, entry, policy, i))
            else:
                out.append(c)
        if not matched and any(ch.islower() for ch in name):
            out.append(_new_component(entry, name, policy, i))
        comps = out
    selector = props.get("selector")
    if selector is not None:
        keep = {str(s) for s in selector}
        comps = [c for c in comps if c.name in keep]
    return comps


def check_override_types(app: Application, policy: Policy, registry: Registry) -> list[Diagnostic]:
    """Component and trait types named by an override policy must be known definitions, and each
    component name must be a valid pattern."""
    out: list[Diagnostic] = []
    props = policy.properties or {}
    for i, entry in enumerate(props.get("components") or []):
        if not isinstance(entry, dict):
            continue
        base: list[str | int] = ["spec", "policies", policy.index, "properties", "components", i]
        where = policy.doc.location(base if policy.index >= 0 else ["properties", "components", i])
        name = entry.get("name")
        if isinstance(name, str) and name:
            try:
                re.compile(name.replace("*", ".*"))
            except re.error as exc:
                out.append(Diagnostic(f"override policy {policy.name}: component name {name!r} is not a valid "
                                      f"regular expression ({exc})", policy.doc.location([*base, "name"]
                                      if policy.index >= 0 else ["properties", "components", i, "name"]),
                                      "KubeVela reads the name as a regular expression (`*` stands for `.*`): "
                                      "escape special characters such as [ ( +"))
        if entry.get("type") and registry.get("component", str(entry["type"])) is None:
            out.append(Diagnostic(f'override policy {policy.name}: unknown component type "{entry["type"]}"', where,
                                  registry.suggest("component", str(entry["type"]))))
        for t in entry.get("traits") or []:
            ttype = str((t or {}).get("type", ""))
            if ttype and registry.get("trait", ttype) is None:
                out.append(Diagnostic(f'override policy {policy.name}: unknown trait type "{ttype}"', where,
                                      registry.suggest("trait", ttype)))
    return out


def apply_overrides(app: Application, components: Sequence[Component], policies: Sequence[Policy],
                    registry: Registry) -> list[Component]:
    """Override policies applied left to right."""
    problems: list[Diagnostic] = []
    for p in policies:
        problems.extend(check_override_types(app, p, registry))
    if problems:
        raise InputError(problems)
    comps = list(components)
    for p in policies:
        comps = apply_override(comps, p)
    return comps


def override_name_warnings(app: Application) -> list[Diagnostic]:
    """An override entry's `name` is a regular expression in KubeVela (`demo` also matches
    `demo-config`): warn when a name written as a plain component name matches more components
    than the one it spells exactly. A name written with pattern syntax (`^web$`, `web-*`) says
    what it matches on purpose and is not warned about."""
    names = [c.name for c in app.components]
    out: list[Diagnostic] = []
    for p in (*app.policies, *app.external_policies):
        entries = p.properties.get("components") if p.type == OVERRIDE and isinstance(p.properties, dict) else None
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not name or any(ch in _PATTERN_SYNTAX for ch in name):
                continue
            try:
                pattern = re.compile(name.replace("*", ".*"))
            except re.error:
                continue
            hits = [n for n in names if pattern.search(n)]
            if len(hits) > 1 or (hits and hits != [name]):
                base: list[str | int] = ["properties", "components", i, "name"]
                loc = p.doc.location(["spec", "policies", p.index, *base] if p.index >= 0 else base)
                exact = f"^{re.escape(name)}$"
                out.append(Diagnostic(
                    f"override policy {p.name}: component name {name!r} is a regular expression in KubeVela and "
                    f"matches {', '.join(hits)}", loc,
                    f"write {exact!r} to change only {name}" if name in names else
                    "anchor it (^...$) to match exactly the components you mean"))
    return out
