"""A folder of hub manifests + a ref-objects component → the objects it distributes (offline).

`--resources DIR` stands for the objects already on the hub: every YAML file below it (any
nesting, multi-document; `List` objects unpacked). Objects of member clusters may be given under
`DIR/clusters/<cluster>/`. Selection follows KubeVela (semantics §8.2): `resource`/`group` (or the
older `apiVersion`/`kind` form of ACK One's examples) + `name` (default: the component name) or
`labelSelector`, namespace (default: the app's), cluster (default: the hub). The selected objects
are stripped of server-set fields, deduplicated by kind+namespace/name (later wins, in place) and
returned in selector order, list results sorted by namespace/name as an API server lists them.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from velapy.errors import REASON_LIVE_CLUSTER, Diagnostic, InputError, Location, raise_problems
from velapy.load.apiresources import ResourceTable
from velapy.load.application import Application, Component
from velapy.load.metadata import metadata_problems
from velapy.load.yamlio import Document, load_file


class RefTask(Protocol):
    """What resolving needs of a render task (`velapy.compile.render.RenderTask` is one): the app
    and the ref-objects component. A protocol, so that this loader does not import the compiler."""

    @property
    def app(self) -> Application: ...

    @property
    def component(self) -> Component: ...

HUB = "local"

_STRIPPED_METADATA = ("resourceVersion", "generation", "ownerReferences", "deletionTimestamp", "managedFields",
                      "uid", "creationTimestamp")


def _group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass
class HubObjects:
    """Objects by cluster, and the resource ↔ kind mapping they imply."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # cluster → objects
    resources: ResourceTable = field(default_factory=ResourceTable)
    root: str = ""

    def add(self, cluster: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(cluster, []).append(obj)
        if obj.get("kind") == "CustomResourceDefinition":
            self.resources.add_crd(obj)

    def namespaced(self, group: str, kind: str) -> bool:
        found = self.resources.by_kind(group, kind)
        return True if found is None else found.namespaced


def load_hub(root: str | os.PathLike[str]) -> HubObjects:
    """Every manifest under `root`; `root/clusters/<name>/...` belongs to member cluster `<name>`."""
    hub = HubObjects(root=str(root))
    base = Path(root)
    if not base.is_dir():
        raise InputError([Diagnostic(f"--resources: {str(root)!r} is not a directory", Location(file=str(root)),
                                     "--resources names a folder of the manifests on the hub")])
    problems: list[Diagnostic] = []
    for path in _walk(base):
        rel = path.relative_to(base).parts
        cluster = rel[1] if len(rel) > 2 and rel[0] == "clusters" else HUB
        for doc in load_file(path):
            for at, obj in _objects(doc):
                bad = metadata_problems(obj)
                problems.extend(Diagnostic(f"hub object {obj.get('kind')}: {message}", doc.location([*at, *sub]),
                                           "a manifest's metadata is a mapping: name, namespace, labels, annotations")
                                for sub, message in bad)
                if not bad:
                    hub.add(cluster, obj)
    raise_problems(problems)
    return hub


def _walk(base: Path) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".yaml", ".yml", ".json")):
                yield Path(dirpath) / name


def _objects(doc: Document) -> Iterable[tuple[list[str | int], dict[str, Any]]]:
    """The objects of a document, each with its path in the document."""
    data = doc.data
    if not isinstance(data, dict):
        return
    if str(data.get("kind", "")).endswith("List") and isinstance(data.get("items"), list):
        for i, item in enumerate(data["items"]):
            if isinstance(item, dict):
                yield ["items", i], item
    elif data.get("kind"):
        yield [], data


def strip_server_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy without the fields a server sets (KubeVela's ClearRefObjectForDispatch)."""
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for k in _STRIPPED_METADATA:
            meta.pop(k, None)
    out.pop("status", None)
    if out.get("kind") == "Service" and out.get("apiVersion") == "v1":
        spec = out.get("spec")
        if isinstance(spec, dict) and "clusterIP" in spec and spec["clusterIP"] != "None":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    return out


def resolve_ref_objects(task: RefTask, hub: HubObjects | None) -> list[dict[str, Any]]:
    """The objects a ref-objects component selects, for this task."""
    app, comp = task.app, task.component
    props = comp.properties or {}
    selectors = props.get("objects") or []
    problems: list[Diagnostic] = []
    result: list[dict[str, Any]] = []
    if props.get("urls"):
        problems.append(Diagnostic("ref-objects `urls` cannot be fetched offline; put the objects in --resources",
                                   app.component_location(comp, "properties", "urls")))
    if not isinstance(selectors, list):
        selectors = []
    for i, sel in enumerate(selectors):
        loc = app.component_location(comp, "properties", "objects", i)
        if not isinstance(sel, dict):
            problems.append(Diagnostic("an object selector must be a mapping", loc))
            continue
        try:
            found = _select(sel, task, hub, loc)
        except InputError as exc:
            problems.extend(exc.diagnostics)
            continue
        for obj in found:
            clean = strip_server_fields(obj)
            key = _identity(clean)
            for j, old in enumerate(result):
                if _identity(old) == key:
                    result[j] = clean
                    break
            else:
                result.append(clean)
    if problems:
        raise InputError(problems)
    return result


def _identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (str(obj.get("apiVersion", "")), str(obj.get("kind", "")), str(meta.get("namespace", "")),
            str(meta.get("name", "")))


def _select(sel: dict[str, Any], task: RefTask, hub: HubObjects | None, loc: Location) -> list[dict[str, Any]]:
    comp = task.component
    labels = sel.get("labelSelector") or sel.get("selector")
    name = sel.get("name") or ""
    if labels and name:
        raise InputError([Diagnostic("invalid object selector for ref-objects, name and labelSelector cannot be "
                                     "both set", loc)])
    table = hub.resources if hub is not None else ResourceTable()
    group = str(sel.get("group") or "")
    version = ""
    if sel.get("resource"):
        found = table.resolve(str(sel["resource"]), group, loc)
        kind, namespaced, group = found.kind, found.namespaced, found.group
    elif sel.get("apiVersion") and sel.get("kind"):
        api_version = str(sel["apiVersion"])
        group = _group_of(api_version)
        version = api_version.split("/")[-1]
        kind = str(sel["kind"])
        known = table.by_kind(group, kind)
        namespaced = True if known is None else known.namespaced
    else:
        raise InputError([Diagnostic("neither resource nor apiVersion/kind is set for the referred objects", loc)])
    if hub is None:
        raise InputError([Diagnostic(
            "ref-objects needs the hub's objects: pass --resources DIR (a folder of the manifests on the hub)", loc,
            reason=REASON_LIVE_CLUSTER)])
    cluster = str(sel.get("cluster") or HUB)
    ns = str(sel.get("namespace") or task.app.namespace)
    pool = hub.objects.get(cluster, [])
    if cluster != HUB and cluster not in hub.objects:
        raise InputError([Diagnostic(
            f"no objects of cluster {cluster!r} in --resources (expected under {hub.root}/clusters/{cluster}/)", loc)])

    def matches(obj: dict[str, Any]) -> bool:
        if obj.get("kind") != kind or _group_of(str(obj.get("apiVersion", ""))) != group:
            return False
        if version and str(obj.get("apiVersion", "")).split("/")[-1] != version:
            return False
        meta = obj.get("metadata") or {}
        return not namespaced or (meta.get("namespace") or "default") == ns

    if labels:
        if not isinstance(labels, dict):
            raise InputError([Diagnostic("labelSelector must be a map of label values", loc)])
        out = [o for o in pool if matches(o) and all(
            ((o.get("metadata") or {}).get("labels") or {}).get(k) == str(v) for k, v in labels.items())]
        return sorted(out, key=lambda o: (str((o.get("metadata") or {}).get("namespace", "")),
                                          str((o.get("metadata") or {}).get("name", ""))))
    want = str(name or comp.name)
    for o in pool:
        if matches(o) and (o.get("metadata") or {}).get("name") == want:
            return [o]
    where = f"{ns}/{want}" if namespaced else want
    raise InputError([Diagnostic(
        f"failed to load ref object {kind} {where}" + (f" from cluster {cluster}" if cluster != HUB else "")
        + f": not found in --resources {hub.root}", loc)])
