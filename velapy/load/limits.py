"""The environment → the bounds velapy works within, and checks that answer before the work starts.

Limits a real user never meets, so that a hostile or broken input gets a clear, located exit-2
error in seconds instead of minutes of CPU or gigabytes of memory. Each can be raised (or
lowered) by an environment variable; the defaults and why:

| variable | default | bounds |
|---|---|---|
| `VELAPY_MAX_FILE_BYTES` | 4 MiB | one YAML input file (an app is KiB; one object at most 1.5 MiB) |
| `VELAPY_MAX_YAML_DEPTH` | 128 | nesting of mappings and lists in one document |
| `VELAPY_MAX_YAML_NODES` | 100,000 | nodes of one document once aliases are expanded (alias bombs) |
| `VELAPY_MAX_COMPONENTS` | 1,000 | components of one Application |
| `VELAPY_MAX_TRAITS` | 1,000 | traits of one component (a real dependency between traits costs an engine round) |
| `VELAPY_MAX_INSTANCES` | 20,000 | component renders of one app: components x placements |

The values are read when a check runs (no module state), so a test or a wrapper can set them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from velapy.errors import Diagnostic, InputError, Location

ENV = {
    "file_bytes": "VELAPY_MAX_FILE_BYTES",
    "yaml_depth": "VELAPY_MAX_YAML_DEPTH",
    "yaml_nodes": "VELAPY_MAX_YAML_NODES",
    "components": "VELAPY_MAX_COMPONENTS",
    "traits": "VELAPY_MAX_TRAITS",
    "instances": "VELAPY_MAX_INSTANCES",
}


@dataclass(frozen=True)
class Limits:
    file_bytes: int = 4 * 1024 * 1024
    yaml_depth: int = 128
    yaml_nodes: int = 100_000
    components: int = 1_000
    traits: int = 1_000
    instances: int = 20_000


def current() -> Limits:
    """The defaults, overridden by the environment; a malformed value is an InputError."""
    values: dict[str, Any] = {}
    for f in fields(Limits):
        name = ENV[f.name]
        raw = os.environ.get(name, "").strip().replace("_", "")
        if not raw:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise InputError(f"{name}={os.environ[name]!r}: expected a whole number") from None
        if value < 1:
            raise InputError(f"{name}={os.environ[name]!r}: expected a number of at least 1")
        values[f.name] = value
    return Limits(**values)


def exceeded(what: str, found: int, limit: int, field: str, location: Location) -> Diagnostic:
    """The one wording of every limit error: what, how many, the limit, and how to raise it."""
    return Diagnostic(f"{what}: {found:,} is more than velapy's limit of {limit:,}", location,
                      f"a real input stays far below this; if yours is meant to be this large, raise the limit "
                      f"with {ENV[field]}=N")


def check_application_size(docs: Sequence[Any]) -> None:
    """Components per Application and traits per component, on the documents as read (before any
    validation or rendering). `docs` are `yamlio.Document`s."""
    lim = current()
    problems: list[Diagnostic] = []
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") != "Application":
            continue
        spec = data.get("spec")
        comps = spec.get("components") if isinstance(spec, dict) else None
        if not isinstance(comps, list):
            continue
        if len(comps) > lim.components:
            problems.append(exceeded("components in one Application", len(comps), lim.components, "components",
                                     doc.location(["spec", "components"])))
            continue
        for i, c in enumerate(comps):
            traits = c.get("traits") if isinstance(c, dict) else None
            if isinstance(traits, list) and len(traits) > lim.traits:
                problems.append(exceeded(f"traits on component {c.get('name', i)}", len(traits), lim.traits,
                                         "traits", doc.location(["spec", "components", i, "traits"])))
    if problems:
        raise InputError(problems)


def check_instances(count: int, app_file: str) -> None:
    """Component renders (components x placements) of one app, before the engine runs."""
    lim = current()
    if count > lim.instances:
        raise InputError([exceeded("component renders (components x clusters/namespaces)", count, lim.instances,
                                   "instances", Location(file=app_file))])


__all__ = ["ENV", "Limits", "check_application_size", "check_instances", "current", "exceeded"]
