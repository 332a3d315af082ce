"""Tokens and an RBAC rule table (YAML or a dict) → who a request is and what it may do.

Without a table every authenticated user may do everything, and may impersonate anyone (the demo
works out of the box); the kubeconfig token authenticates as `admin` in groups `system:masters`
and `system:authenticated`. A table looks like this:

    users:                       # who can authenticate (tokens are the same in every cluster)
      - name: admin
        groups: [system:masters] # system:masters may do everything, as in a real cluster
        kubeconfig: true         # the kubeconfig's contexts use this user (default: the first user)
      - name: deployer
        token: deployer-token    # optional; generated when absent
        groups: [deployers]
      - name: alice
        token: alice-token
    rules:                       # allow-only, like RBAC; no rule = forbidden
      - users: [deployer]        # subjects: users and/or groups
        verbs: [impersonate]     # impersonation is the verb `impersonate` on users/groups/serviceaccounts
        resources: [users, groups]
        resourceNames: [alice, team-a]   # optional; absent = any name
      - groups: [team-a]
        verbs: [get, list, create, update, patch, delete]   # "*" = all
        apiGroups: ["", apps]    # default ["*"]; "" is the core group
        resources: [configmaps, deployments, deployments/status]   # default ["*"]
        namespaces: [demo]       # absent = every namespace and the cluster scope
        clusters: [prod-1]       # absent = every cluster

An impersonated user gets the groups sent in `Impersonate-Group` plus `system:authenticated`.
Discovery (/api, /apis, /version, ...) is allowed to every authenticated user.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"


class RbacError(ValueError):
    """A malformed RBAC table."""


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    token: str
    kubeconfig: bool = False


@dataclass(frozen=True)
class Rule:
    users: frozenset[str]
    groups: frozenset[str]
    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    namespaces: frozenset[str] | None
    resource_names: frozenset[str] | None
    clusters: frozenset[str] | None

    def matches(self, cluster: str, user: str, groups: tuple[str, ...], verb: str, api_group: str, resource: str,
                namespace: str, name: str) -> bool:
        if user not in self.users and not self.groups.intersection(groups):
            return False
        if self.clusters is not None and cluster not in self.clusters:
            return False
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if "*" not in self.api_groups and api_group not in self.api_groups:
            return False
        base = resource.split("/", 1)[0]
        if "*" not in self.resources and resource not in self.resources and f"{base}/*" not in self.resources:
            return False
        if self.namespaces is not None and "*" not in self.namespaces and (not namespace
                                                                           or namespace not in self.namespaces):
            return False
        return self.resource_names is None or (bool(name) and name in self.resource_names)


def _strings(item: dict[str, Any], key: str, where: str, default: list[str] | None = None) -> frozenset[str] | None:
    value = item.get(key, default)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RbacError(f"{where}: {key} must be a list of strings")
    return frozenset(value)


@dataclass
class Authorizer:
    """Authentication (bearer tokens) and authorization (the rule table, or allow-all)."""

    users: list[User] = field(default_factory=list)
    rules: list[Rule] | None = None  # None = no table: everyone may do everything

    @classmethod
    def load(cls, source: str | Path | dict[str, Any] | None) -> Authorizer:
        if source is None:
            return cls([User("admin", (MASTERS, AUTHENTICATED), secrets.token_hex(16), True)], None)
        if isinstance(source, str | Path):
            try:
                data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
            except OSError as e:
                raise RbacError(f"{source}: cannot read the RBAC file: {e.strerror}") from None
            except yaml.YAMLError as e:
                raise RbacError(f"{source}: not YAML: {e}") from None
            where = str(source)
        else:
            data, where = source, "rbac"
        if not isinstance(data, dict):
            raise RbacError(f"{where}: an RBAC table is a mapping with `users` and `rules`")
        unknown = set(data) - {"users", "rules"}
        if unknown:
            raise RbacError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (expected users, rules)")
        users: list[User] = []
        for i, item in enumerate(data.get("users") or []):
            at = f"{where}: users[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                raise RbacError(f"{at}: a user needs a name")
            groups = sorted(_strings(item, "groups", at, []) or ())
            token = item.get("token") or secrets.token_hex(16)
            users.append(User(item["name"], (*tuple(groups), AUTHENTICATED), str(token), bool(item.get("kubeconfig"))))
        if not users:
            users.append(User("admin", (MASTERS, AUTHENTICATED), secrets.token_hex(16), True))
        if not any(u.kubeconfig for u in users):
            first = users[0]
            users[0] = User(first.name, first.groups, first.token, True)
        rules: list[Rule] = []
        for i, item in enumerate(data.get("rules") or []):
            at = f"{where}: rules[{i}]"
            if not isinstance(item, dict):
                raise RbacError(f"{at}: a rule is a mapping")
            extra = set(item) - {"users", "groups", "verbs", "apiGroups", "resources", "namespaces",
                                 "resourceNames", "clusters"}
            if extra:
                raise RbacError(f"{at}: unknown key(s) {', '.join(sorted(extra))}")
            verbs = _strings(item, "verbs", at)
            if not verbs:
                raise RbacError(f"{at}: a rule needs verbs")
            rules.append(Rule(_strings(item, "users", at, []) or frozenset(),
                              _strings(item, "groups", at, []) or frozenset(), verbs,
                              _strings(item, "apiGroups", at, ["*"]) or frozenset(),
                              _strings(item, "resources", at, ["*"]) or frozenset(),
                              _strings(item, "namespaces", at), _strings(item, "resourceNames", at),
                              _strings(item, "clusters", at)))
        return cls(users, rules)

    @property
    def kubeconfig_user(self) -> User:
        return next(u for u in self.users if u.kubeconfig)

    def authenticate(self, token: str) -> User | None:
        for u in self.users:
            if token and secrets.compare_digest(u.token, token):
                return u
        return None

    def allowed(self, cluster: str, user: str, groups: tuple[str, ...], verb: str, api_group: str, resource: str,
                namespace: str = "", name: str = "") -> bool:
        if self.rules is None or MASTERS in groups:
            return True
        return any(r.matches(cluster, user, groups, verb, api_group, resource, namespace, name) for r in self.rules)


def forbidden_message(user: str, verb: str, api_group: str, resource: str, namespace: str, name: str) -> str:
    """The API server's text for an RBAC denial."""
    what = resource.split("/", 1)[0] + (f".{api_group}" if api_group else "")
    subject = f'{what} "{name}"' if name else what
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group '
            f'"{api_group}" {scope}')
