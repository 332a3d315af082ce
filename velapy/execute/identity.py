"""The hub (or a kubeconfig) → who is running velapy: the authenticated caller, for the claim check,
the run lease and the audit record in the run state.

Like `kubectl auth whoami`, a `SelfSubjectReview` (authentication.k8s.io/v1) is created on the hub
with the kubeconfig's own credentials (no impersonation beyond the kubeconfig's own `as`), and the
API server answers with the user it authenticated. Without a hub, or when the hub does not serve
the review (an API server older than 1.28), the caller is the kubeconfig's user entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from velapy.errors import InputError
from velapy.kube import Access, ApiError, Client, NotServed, ResourceType
from velapy.kube.kubeconfig import load_context
from velapy.load.clusters import Identity

SSR = ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", False, ("create",))


@dataclass(frozen=True)
class Caller:
    identity: Identity
    source: str  # "SelfSubjectReview on <cluster>" | "kubeconfig user <name>"

    def text(self) -> str:
        ident = self.identity
        return ident.user + (f" (groups {', '.join(ident.groups)})" if ident.groups else "")


def whoami(client: Client) -> Identity | None:
    """The user the cluster authenticates `client` as; None when it does not serve SelfSubjectReview.
    Raises Unreachable (and other ApiErrors) as they come."""
    try:
        out = client.create(SSR, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    except NotServed:
        return None
    except ApiError as exc:
        if exc.status in (403, 404, 405):  # not served, or not allowed to this user: fall back to the kubeconfig
            return None
        raise
    info = (out.get("status") or {}).get("userInfo") or {}
    user = str(info.get("username") or "")
    if not user:
        return None
    return Identity(user, tuple(str(g) for g in info.get("groups") or ()))


def kubeconfig_user(access: Access) -> Caller:
    try:
        ctx = load_context(access.kubeconfig, access.context)
    except InputError:
        return Caller(Identity("unknown"), "kubeconfig")
    return Caller(Identity(ctx.user), f"kubeconfig user {ctx.user}")


def authenticated_caller(hub: Access | None, first: Access | None, factory: Callable[[Access], Client]) -> Caller:
    """Ask the hub who we are (its kubeconfig credentials, not the run's impersonation); else the kubeconfig
    user of the hub's (or the first cluster's) context. Raises Unreachable when the hub does not answer."""
    if hub is not None:
        client = factory(Access(hub.cluster, hub.kubeconfig, hub.context, None, hub.options))
        try:
            ident = whoami(client)
        finally:
            client.close()
        if ident is not None:
            return Caller(ident, f"SelfSubjectReview on {hub.cluster}")
        return kubeconfig_user(hub)
    if first is not None:
        return kubeconfig_user(first)
    return Caller(Identity("unknown"), "nothing")


__all__ = ["SSR", "Caller", "authenticated_caller", "kubeconfig_user", "whoami"]
