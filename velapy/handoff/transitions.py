"""Two versions of a hand-off folder → the changes that delete an engine object and create another in
its place for the same objects (a renamed step, a cluster moved to another step, a renamed app).

Both engines name an object after the step and the cluster, so such a change is a delete and a
create, never an update: Argo CD deletes the old Application with its objects (the ApplicationSet
controller gives generated Applications the resources finalizer: `RenderTemplateParams` in
`applicationset/utils/utils.go`), Flux deletes the old Kustomization and its finalizer prunes its
inventory (`finalize` in kustomize-controller). The objects are gone until the new one syncs; when
a gate holds the new one, until someone approves it. `render --check` and `velapy diff` print these
as warnings (velapy.review.sides). Pure: it reads the files' text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from velapy.errors import InputError
from velapy.load.yamlio import load_documents

_APPSET_FILES = ("argocd/2-applicationset.yaml", "argocd/applicationset.yaml")  # the second: before issue 20
_UNIT_FILES = ("flux/units/kustomizations.yaml", "flux/kustomizations.yaml")


@dataclass(frozen=True)
class _Unit:
    name: str
    where: str  # the destination cluster (Argo CD) or the folder applied (Flux)
    objects: frozenset[str]  # the files it applies (Argo CD); empty = the whole folder (Flux)
    held: bool


def _docs(files: Mapping[str, str], candidates: tuple[str, ...]) -> list[dict[str, Any]]:
    for rel in candidates:
        if rel in files:
            try:
                return [d.data for d in load_documents(files[rel], rel) if isinstance(d.data, dict)]
            except InputError:
                return []
    return []


def _argocd(files: Mapping[str, str]) -> tuple[str, dict[str, _Unit]]:
    docs = [d for d in _docs(files, _APPSET_FILES) if d.get("kind") == "ApplicationSet"]
    if not docs:
        return "", {}
    appset = docs[0]
    spec = appset.get("spec") or {}
    held: set[str] = set()
    for step in ((spec.get("strategy") or {}).get("rollingSync") or {}).get("steps") or []:
        if isinstance(step, dict) and step.get("maxUpdate") in (0, "0", "0%"):
            for expr in step.get("matchExpressions") or []:
                held.update(str(v) for v in expr.get("values") or [])
    units: dict[str, _Unit] = {}
    for gen in spec.get("generators") or []:
        for e in ((gen or {}).get("list") or {}).get("elements") or []:
            if not isinstance(e, dict) or "name" not in e:
                continue
            include = str(e.get("include", "")).strip("{}")
            objects = frozenset(f"{e.get('path', '')}/{f}" for f in include.split(",") if f)
            units[str(e["name"])] = _Unit(str(e["name"]), str(e.get("destination", "")), objects,
                                          str(e.get("step", "")) in held)
    return str((appset.get("metadata") or {}).get("name", "")), units


def _flux(files: Mapping[str, str]) -> dict[str, _Unit]:
    units: dict[str, _Unit] = {}
    for d in _docs(files, _UNIT_FILES):
        spec = d.get("spec") or {}
        name = str((d.get("metadata") or {}).get("name", ""))
        path = str(spec.get("path", ""))
        if d.get("kind") != "Kustomization" or not name or "/flux/namespaces/" in f"/{path.lstrip('./')}":
            continue
        units[name] = _Unit(name, path, frozenset(), spec.get("suspend") is True)
    return units


def recreated(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """What the change from `old` to `new` (two output folders' files) deletes and re-creates."""
    out: list[str] = []
    old_set, old_apps = _argocd(old)
    new_set, new_apps = _argocd(new)
    if old_set and new_set and old_set != new_set:
        out.append(f"this change renames ApplicationSet {old_set} to {new_set}: applying {new_set} leaves "
                   f"{old_set} and its Applications in place, both managing the same objects; deleting {old_set} "
                   "deletes its Applications and, through their finalizers, the objects (README: moving to new "
                   "names keeps the workloads)")
    else:
        out += _pairs("Application", old_apps, new_apps)
    if _UNIT_FILES[1] in old and _UNIT_FILES[0] in new:  # hand-applied units → units applied by the root
        out.append("this change moves the Flux Kustomizations under the root Kustomization flux/root.yaml, with "
                   "names that carry the namespace: the Kustomizations applied by hand from flux/kustomizations.yaml "
                   "stay until you delete them (README: moving to new names keeps the workloads)")
    else:
        out += _pairs("Kustomization", _flux(old), _flux(new))
    return out


def _pairs(kind: str, old: dict[str, _Unit], new: dict[str, _Unit]) -> list[str]:
    out: list[str] = []
    added = [u for n, u in new.items() if n not in old]
    for name, was in old.items():
        if name in new:
            continue
        heirs = [u for u in added if u.where == was.where and (not was.objects or was.objects & u.objects)]
        for heir in heirs:
            until = "the gate is approved" if heir.held else f"{heir.name} syncs"
            out.append(f"this change deletes and re-creates {kind} {was.name} as {heir.name}: its workloads are "
                       f"removed until {until} (a renamed step, or a cluster moved to another step)")
    return out


# ----------------------------------------------------------------------------------------------
# two apps of one repository


NAMED_FILES = ("argocd/1-appproject.yaml", "argocd/2-applicationset.yaml", "flux/root.yaml",
               "flux/units/kustomizations.yaml")  # the files whose objects an engine knows by name


def engine_names(files: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """(kind, name) → `namespace/app` of every engine object a hand-off folder's files define (the
    Applications its ApplicationSet generates too), by their velapy.dev labels."""
    out: dict[tuple[str, str], str] = {}
    for rel in NAMED_FILES:
        for d in _docs(files, (rel,)):
            meta = d.get("metadata") or {}
            labels = meta.get("labels") or {}
            owner = f"{labels.get('velapy.dev/namespace', '')}/{labels.get('velapy.dev/app', '')}"
            out[(str(d.get("kind")), str(meta.get("name")))] = owner
            if d.get("kind") == "ApplicationSet":
                for name in _argocd({"argocd/2-applicationset.yaml": files[rel]})[1]:
                    out[("Application", name)] = owner
    return out


def clashes(mine: Mapping[str, str], others: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The engine objects of `mine` that another app's hand-off folder (path → its files) also defines."""
    names = engine_names(mine)
    out: list[str] = []
    for where, files in sorted(others.items()):
        for (kind, name), owner in engine_names(files).items():
            me = names.get((kind, name))
            if me is not None and me != owner:
                out.append(f"{kind} {name} of {me} is also emitted for {owner} in {where}: applying both makes one "
                           "replace the other, and the engine deletes the objects of the one replaced")
    return out


__all__ = ["NAMED_FILES", "clashes", "engine_names", "recreated"]
