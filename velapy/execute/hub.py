"""The live clusters → what rendering an app file needs from them: ref-objects' objects from the hub
(`local`), and each cluster's version where the inventory gives none.

ACK One users create the Deployments, Services, ConfigMaps... on the Fleet (hub) first, then an
Application whose `ref-objects` components point at them. Applying an app file without
`--resources` (or `velapy render --resources-from-hub`) reads exactly the objects those selectors
name, through the same client as everything else, into the `HubObjects` the offline renderer
takes from a folder; `refobjects` then strips server-set fields as it does offline. KubeVela reads
`context.clusterVersion` from each cluster: a cluster without `version:` in the inventory gets
its live `/version` (an unreachable one keeps the hub's version, with a warning).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from velapy.errors import Diagnostic, InputError
from velapy.kube import Client, KubeError
from velapy.load.application import Application
from velapy.load.clusters import HUB, Cluster, Inventory
from velapy.load.refobjects import HubObjects

GetClient = Callable[[str], Client | None]


def uses_ref_objects(app: Application) -> bool:
    return any(c.type == "ref-objects" for c in app.components)


def read_hub_objects(app: Application, get_client: GetClient) -> HubObjects:
    """The objects every ref-objects selector of `app` names, read live (by name or label selector)."""
    hub = HubObjects(root="the live hub")
    problems: list[Diagnostic] = []
    for comp in app.components:
        if comp.type != "ref-objects":
            continue
        for i, sel in enumerate((comp.properties or {}).get("objects") or []):
            if not isinstance(sel, dict):
                continue
            loc = app.component_location(comp, "properties", "objects", i)
            group = str(sel.get("group") or "")
            if sel.get("resource"):
                try:
                    res = hub.resources.resolve(str(sel["resource"]), group, loc)
                except InputError as exc:
                    problems.extend(exc.diagnostics)
                    continue
                kind, api_version = res.kind, res.api_version
            elif sel.get("apiVersion") and sel.get("kind"):
                api_version, kind = str(sel["apiVersion"]), str(sel["kind"])
            else:
                continue  # the renderer reports it, located
            cluster = str(sel.get("cluster") or HUB)
            client = get_client(cluster)
            if client is None:
                problems.append(Diagnostic(f"ref-objects reads cluster {cluster}, which has no kubeconfig context "
                                           "(give --kubeconfig with a context of that name, or --resources DIR)",
                                           loc))
                continue
            ns = str(sel.get("namespace") or app.namespace)
            try:
                rt = client.resource(api_version, kind)
                labels = sel.get("labelSelector") or sel.get("selector")
                if isinstance(labels, dict) and labels:
                    selector = ",".join(f"{k}={v}" for k, v in labels.items())
                    found = client.list(rt, ns if rt.namespaced else "", selector)
                else:
                    one = client.get(rt, ns if rt.namespaced else "", str(sel.get("name") or comp.name))
                    found = [one] if one is not None else []
            except KubeError as exc:
                problems.append(Diagnostic(f"reading ref-objects from cluster {cluster}: "
                                           f"{exc.diagnostics[0].message}", loc))
                continue
            for obj in found:
                hub.add(cluster, obj)
            hub.objects.setdefault(cluster, [])
    if problems:
        raise InputError(problems)
    return hub


_VERSION = re.compile(r"^v?(\d+)\.(\d+)")


def live_versions(inventory: Inventory, get_client: GetClient, warn: Callable[[str], None]) -> Inventory:
    """The inventory with each cluster's live version where it gives none (clusters asked in parallel)."""

    def one(c: Cluster) -> Cluster:
        if c.version:
            return c
        client = get_client(c.name)
        if client is None:
            return c
        try:
            info: dict[str, Any] = client.version()
        except KubeError as exc:
            warn(f"cluster {c.name}: cannot read its version ({exc.diagnostics[0].message}); rendering with the "
                 "hub's")
            return c
        m = _VERSION.match(str(info.get("gitVersion") or ""))
        if m is None and info.get("major") and info.get("minor"):
            m = _VERSION.match(f"{info['major']}.{str(info['minor']).rstrip('+')}")
        return replace(c, version=f"{m.group(1)}.{m.group(2)}") if m else c

    wanted = [c for c in inventory.clusters if not c.version]
    for c in wanted:
        get_client(c.name)  # clients are made here, one thread, before the requests go out in parallel
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(wanted)))) as ex:
        clusters = list(ex.map(one, inventory.clusters))
    return Inventory(tuple(clusters), inventory.file)


__all__ = ["live_versions", "read_hub_objects", "uses_ref_objects"]
