"""The policies of an Application (and standalone Policy documents) → problems in a Collector.

Policy names are unique, types known, properties checked against their definition, `properties`
given; an override policy names known component and trait types and existing components.
Returns the policy names (a deploy step may name them).
"""

from __future__ import annotations

from typing import Any

from velapy.load.yamlio import Document
from velapy.validate.collector import Collector, list_of, mapping_of, text_of
from velapy.validate.explain import JsonPath, did_you_mean

OVERRIDE = "override"


def check_policies(c: Collector, app: Document, spec: dict[str, Any], components: list[str]) -> list[str]:
    """The app's `spec.policies` → problems in `c`; returns the policy names (given or generated)."""
    seen: dict[str, int] = {}
    pols = spec.get("policies")
    if not isinstance(pols, list):
        return []
    for i, p in enumerate(pols):
        if not isinstance(p, dict):
            continue
        ptype = p.get("type")
        if not isinstance(ptype, str) or not ptype:
            continue
        base: JsonPath = ("spec", "policies", i)
        name = text_of(p.get("name")) or f"{ptype}-auto-gen-{i}"
        if name in seen:
            first = app.location(["spec", "policies", seen[name]])
            c.add(app, (*base, "name"), f'duplicated policy name "{name}" (first at line {first.line})')
            continue
        seen[name] = i
        check_policy(c, app, base, name, ptype, p, components)
    return list(seen)


def check_standalone_policy(c: Collector, doc: Document) -> None:
    """A Policy document (`-f`) → problems in `c`."""
    data = mapping_of(doc.data)
    ptype = data.get("type")
    if isinstance(ptype, str) and ptype:
        name = text_of(mapping_of(data.get("metadata")).get("name"))
        check_policy(c, doc, (), name, ptype, data, [])


def check_policy(c: Collector, doc: Document, base: JsonPath, name: str, ptype: str, p: dict[str, Any],
                 components: list[str]) -> None:
    """One policy → problems in `c`: known type, properties given and valid, override specifics."""
    if not c.known_type(doc, (*base, "type"), "policy", ptype):
        return
    if p.get("properties") is None and ptype != "debug":
        c.add(doc, base, f"policy {ptype} named {name} must not have empty properties",
              "give the policy its properties (an empty mapping `{}` is enough for all-default ones)")
        return
    c.check_properties(doc, base, "policy", ptype, p)
    if ptype == OVERRIDE and components:
        check_override(c, doc, base, name, mapping_of(p.get("properties")), components)


def check_override(c: Collector, doc: Document, base: JsonPath, name: str, props: dict[str, Any],
                   components: list[str]) -> None:
    """An override policy's properties → problems in `c`: known types, selected components exist."""
    patched: list[str] = []
    for j, entry in enumerate(list_of(props.get("components"))):
        if not isinstance(entry, dict):
            continue
        ebase: JsonPath = (*base, "properties", "components", j)
        patched.append(text_of(entry.get("name")))
        ctype = entry.get("type")
        if isinstance(ctype, str) and ctype:
            c.known_type(doc, (*ebase, "type"), "component", ctype, what=f"override policy {name}: ")
        for k, t in enumerate(list_of(entry.get("traits"))):
            ttype = mapping_of(t).get("type")
            if isinstance(ttype, str) and ttype:
                c.known_type(doc, (*ebase, "traits", k, "type"), "trait", ttype,
                             what=f"override policy {name}: ")
    for k, sel in enumerate(list_of(props.get("selector"))):
        if isinstance(sel, str) and sel not in components and sel not in patched:
            c.add(doc, (*base, "properties", "selector", k),
                  f'override policy {name}: selector names component "{sel}", which does not exist',
                  did_you_mean(sel, components) or "the selector keeps only the components it names")
