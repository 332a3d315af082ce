"""The app's folder + the environment → the fleet settings of its project (`velapy.yaml`'s `fleet`
section, found by walking up from the app as git finds `.git`), so commands stop repeating flags.

Precedence, resolved once per command: flags, then `VELAPY_CLUSTERS` / `VELAPY_KUBECONFIG`, then
the project file, then the defaults. Paths in the file are relative to its folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from velapy.errors import InputError, Location
from velapy.load.clusters import schema_problems
from velapy.load.yamlio import load_file
from velapy.resources import schemas_dir

CONFIG_NAME = "velapy.yaml"
ENV_CLUSTERS = "VELAPY_CLUSTERS"
ENV_KUBECONFIG = "VELAPY_KUBECONFIG"


@dataclass(frozen=True)
class FleetSettings:
    clusters: str = ""
    kubeconfig: str = ""
    create_namespaces: bool = False
    as_user: str = ""
    as_groups: tuple[str, ...] = ()
    history_limit: int = 10
    file: str = ""  # the velapy.yaml they came from ("" = none)


def find_project(start: str) -> str:
    """`velapy.yaml` in `start` (a file's folder) or the nearest folder above it; '' when none."""
    here = Path(start).resolve()
    if not here.is_dir():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return str(candidate)
    return ""


@cache
def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((schemas_dir() / "velapy-config.schema.json").read_text(encoding="utf-8"))
    return data


def load_fleet(path: str) -> FleetSettings:
    """The `fleet` section of project file `path` (the whole file checked against its schema)."""
    docs = load_file(path)
    if len(docs) != 1:
        raise InputError(f"{CONFIG_NAME} holds one YAML document, found {len(docs)}", Location(file=path, line=1))
    problems = schema_problems(docs[0], _schema())
    if problems:
        raise InputError(problems)
    raw: Mapping[str, Any] = docs[0].data.get("fleet") or {}
    root = Path(path).resolve().parent

    def rel(key: str) -> str:
        return str(root / str(raw[key])) if raw.get(key) else ""

    ident = raw.get("identity") or {}
    return FleetSettings(rel("clusters"), rel("kubeconfig"), bool(raw.get("createNamespaces")),
                         str(ident.get("user") or ""), tuple(str(g) for g in ident.get("groups") or ()),
                         int(raw.get("historyLimit") or 10), path)


def settings_for(app: str, env: Mapping[str, str] | None = None) -> FleetSettings:
    """The project's fleet settings for APP (a path: walk up from it; a name: from the current
    folder), with the environment's winning over the file's."""
    env = os.environ if env is None else env
    start = app if os.path.exists(app) else "."
    found = find_project(start)
    base = load_fleet(found) if found else FleetSettings()
    clusters = env.get(ENV_CLUSTERS) or base.clusters
    kubeconfig = env.get(ENV_KUBECONFIG) or base.kubeconfig
    return FleetSettings(clusters, kubeconfig, base.create_namespaces, base.as_user, base.as_groups,
                         base.history_limit, found)


__all__ = ["CONFIG_NAME", "ENV_CLUSTERS", "ENV_KUBECONFIG", "FleetSettings", "find_project", "load_fleet",
           "settings_for"]
