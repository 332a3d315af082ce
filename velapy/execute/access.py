"""Plan clusters + inventory + command-line flags → how to reach each cluster, checked before any request.

Precedence, per cluster:
* kubeconfig file: the inventory's `kubeconfig` (`--clusters`), else the plan's, else
  `--kubeconfig FILE`, else $KUBECONFIG / ~/.kube/config;
* context: the inventory's or plan's `context`, else the cluster's own NAME (also for the hub
  `local`), so one kubeconfig with a context per cluster serves a whole fleet;
* identity (Impersonate-User / -Group): the operator's `--as` / `--as-group`, else the platform's
  (the inventory's per-cluster `identity`), else the kubeconfig user's `as` / `as-groups`, else
  none: the authenticated caller itself (what a SelfSubjectReview on the hub answers).

The Application's `app.oam.dev/username` / `app.oam.dev/group` annotations never choose the
identity: in KubeVela the hub's admission webhook stamps them from the authenticated request, so
here they are a claim, checked by `check_claim` against the identity the run acts as (exit 2 when
they differ, before any write).

Every kubeconfig problem of every cluster is reported at once, naming file and context, before
the first request (`velapy.kube.kubeconfig`). The hub is optional: without a usable context for
`local`, run state lives in a local file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from velapy.errors import Diagnostic, InputError
from velapy.execute.planfile import ClusterEntry
from velapy.kube import Access, Client
from velapy.kube.kubeconfig import default_kubeconfig, load_context
from velapy.load.clusters import HUB, Identity, Inventory


@dataclass(frozen=True)
class AccessOptions:
    kubeconfig: str = ""  # --kubeconfig
    as_user: str = ""  # --as
    as_groups: tuple[str, ...] = ()  # --as-group
    inventory: Inventory | None = None  # --clusters (its kubeconfig/context/identity win over the plan's)


def _merged(name: str, plan_entry: ClusterEntry | None, opts: AccessOptions) -> ClusterEntry:
    inv = opts.inventory.get(name) if opts.inventory is not None else None
    base = plan_entry or ClusterEntry(name)
    if inv is None:
        return base
    return ClusterEntry(name, inv.kubeconfig or base.kubeconfig, inv.context or base.context,
                        inv.identity or base.identity, inv.version or base.version)


def identity_for(entry: ClusterEntry, opts: AccessOptions) -> Identity | None:
    """The operator's --as, else the platform's identity for the cluster, else None (the caller itself)."""
    if opts.as_user or opts.as_groups:
        return Identity(opts.as_user, tuple(opts.as_groups))
    return entry.identity


def resolve(names: Iterable[str], plan_clusters: Mapping[str, ClusterEntry], claim: Identity | None,
            opts: AccessOptions, *, hub_optional: bool = True) -> tuple[dict[str, Access], Access | None]:
    """Access for each named cluster (all required) and for the hub (None when not configured).

    `claim` (the app's annotations) does not choose any identity; it is accepted here only so that
    callers keep one signature, and is checked by `check_claim`.
    Raises InputError listing every kubeconfig problem at once."""
    del claim
    problems: list[Diagnostic] = []
    out: dict[str, Access] = {}
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        entry = _merged(name, plan_clusters.get(name), opts)
        file = entry.kubeconfig or opts.kubeconfig or default_kubeconfig()
        context = entry.context or name
        try:
            load_context(file, context)
        except InputError as exc:
            problems.extend(Diagnostic(f"cluster {name}: {d.message}", d.location, d.hint) for d in exc.diagnostics)
            continue
        ident = identity_for(entry, opts)
        if ident is not None and ident.groups and not ident.user:
            problems.append(Diagnostic(
                f"cluster {name}: the identity names groups ({', '.join(ident.groups)}) but no user",
                hint="Kubernetes impersonates groups only together with a user: set the inventory identity's "
                     "user, or --as"))
            continue
        out[name] = Access(name, file, context, ident)
    hub: Access | None = out.get(HUB)
    if hub is None and HUB not in wanted:
        entry = _merged(HUB, plan_clusters.get(HUB), opts)
        explicit = bool(entry.kubeconfig or entry.context)
        file = entry.kubeconfig or opts.kubeconfig or default_kubeconfig()
        try:
            load_context(file, entry.context or HUB)
            hub = Access(HUB, file, entry.context or HUB, identity_for(entry, opts))
        except InputError as exc:
            if explicit or not hub_optional:
                problems.extend(Diagnostic(f"hub {HUB}: {d.message}", d.location, d.hint) for d in exc.diagnostics)
            hub = None
    if problems:
        raise InputError(problems)
    return out, hub


def describe_identity(ident: Identity | None) -> str:
    if ident is None or not (ident.user or ident.groups):
        return "nobody"
    return f"user {ident.user}" + (f" (groups {', '.join(ident.groups)})" if ident.groups else "")


def acting_identity(access: Access, caller: Identity | None) -> tuple[Identity | None, str]:
    """Whom requests to `access.cluster` act as, and why (for messages)."""
    if access.identity is not None:
        return access.identity, "impersonated"
    try:
        imp = load_context(access.kubeconfig, access.context).impersonate
    except InputError:
        imp = None
    if imp is not None:
        return imp, "the kubeconfig user's `as`"
    return caller, "the authenticated caller"


def claim_holds(claim: Identity, acting: Identity | None) -> bool:
    """The app's claim matches the identity the run acts as: same user, and every claimed group held."""
    if acting is None:
        return False
    if claim.user and claim.user != acting.user:
        return False
    return all(g in acting.groups for g in claim.groups)


def check_claim(claim: Identity | None, accesses: Mapping[str, Access], caller: Identity | None, *,
                known_only: bool = False) -> None:
    """Refuse (InputError, exit 2) when the app's app.oam.dev/username / group claim another identity than
    the one the run acts as in any cluster. With `known_only`, clusters acting as the (not yet known)
    caller are left for a later call."""
    if claim is None or not (claim.user or claim.groups):
        return
    problems: list[Diagnostic] = []
    for name, acc in sorted(accesses.items()):
        acting, why = acting_identity(acc, caller)
        if acting is None and known_only:
            continue
        if claim_holds(claim, acting):
            continue
        flags = " ".join([f"--as {claim.user}"] * bool(claim.user) + [f"--as-group {g}" for g in claim.groups])
        problems.append(Diagnostic(
            f"cluster {name}: the app's annotations app.oam.dev/username / app.oam.dev/group claim "
            f"{describe_identity(claim)}, but this run acts as {describe_identity(acting)} ({why}); refused "
            "before any write",
            hint=f"the annotations are a claim, never a choice of identity: to act as that user, someone allowed "
                 f"to impersonate it runs the command with `{flags}`; otherwise remove the annotations"))
    if problems:
        raise InputError(problems)


class ClientPool:
    """One client per cluster, all created up front (kubeconfigs are loaded, nothing is requested)."""

    def __init__(self, accesses: Mapping[str, Access], hub: Access | None,
                 factory: Callable[[Access], Client]) -> None:
        self._lock = threading.Lock()
        self._clients: dict[str, Client] = {}
        problems: list[Diagnostic] = []
        for name, acc in accesses.items():
            try:
                self._clients[name] = factory(acc)
            except InputError as exc:
                problems.extend(exc.diagnostics)
        self.hub: Client | None = None
        if hub is not None:
            if hub.cluster in self._clients:
                self.hub = self._clients[hub.cluster]
            else:
                try:
                    self.hub = factory(hub)
                except InputError as exc:
                    problems.extend(exc.diagnostics)
        self.accesses = dict(accesses)
        if hub is not None:
            self.accesses.setdefault(hub.cluster, hub)
        if problems:
            self.close()
            raise InputError(problems)

    def __getitem__(self, name: str) -> Client:
        return self._clients[name]

    def add(self, accesses: Mapping[str, Access], factory: Callable[[Access], Client]) -> dict[str, str]:
        """Clients for more clusters (those of the inventory no longer planned); {cluster: problem} for
        those that cannot be reached this way."""
        problems: dict[str, str] = {}
        for name, acc in accesses.items():
            if name in self._clients:
                continue
            try:
                self._clients[name] = factory(acc)
                self.accesses[name] = acc
            except InputError as exc:
                problems[name] = exc.diagnostics[0].message
        return problems

    def names(self) -> list[str]:
        return list(self._clients)

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        if self.hub is not None and self.hub not in self._clients.values():
            self.hub.close()


__all__ = ["AccessOptions", "ClientPool", "acting_identity", "check_claim", "claim_holds", "describe_identity",
           "identity_for", "resolve"]
