"""A kubeconfig file + a context name → the checked context (server, user, `as`/`as-groups`).

Read before any request so that every mistake is one clear error naming the file and the context:
missing file, malformed YAML, unknown context, a context naming a missing cluster or user, a
cluster without a server. kubectl's impersonation fields of a user (`as`, `as-groups`) are read
here because the Python client ignores them. Nothing here contacts a cluster; no error text
quotes a credential.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from velapy.errors import Diagnostic, InputError, Location
from velapy.load.clusters import Identity


@dataclass(frozen=True)
class KubeContext:
    file: str  # absolute, ~ expanded
    context: str
    cluster: str
    user: str
    server: str
    impersonate: Identity | None  # the user entry's `as` / `as-groups`

    def minimal(self) -> dict[str, Any]:
        """The kubeconfig reduced to this context, its cluster and user, with file references made absolute
        (relative paths in a kubeconfig are relative to the file), for the client's loader."""
        full = os.path.abspath(os.path.expanduser(self.file))
        data = _read(full, os.stat(full).st_mtime_ns)
        base = os.path.dirname(full)

        def pick(key: str, name: str) -> list[dict[str, Any]]:
            out = []
            for item in data.get(key) or []:
                if isinstance(item, dict) and item.get("name") == name:
                    item = copy.deepcopy(item)
                    body = item.get(key.removesuffix("s"))
                    if isinstance(body, dict):
                        for ref in _FILE_KEYS:
                            value = body.get(ref)
                            if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
                                body[ref] = os.path.join(base, value)
                    out.append(item)
            return out

        return {"apiVersion": "v1", "kind": "Config", "current-context": self.context,
                "contexts": pick("contexts", self.context), "clusters": pick("clusters", self.cluster),
                "users": pick("users", self.user) if self.user else []}


_FILE_KEYS = ("certificate-authority", "client-certificate", "client-key", "tokenFile")


def default_kubeconfig() -> str:
    """$KUBECONFIG (its first file) or ~/.kube/config, as kubectl does."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return first or os.path.join(os.path.expanduser("~"), ".kube", "config")


def _problem(path: str, context: str, message: str, hint: str = "") -> InputError:
    where = f"kubeconfig {path}, context {context}" if context else f"kubeconfig {path}"
    return InputError([Diagnostic(f"{where}: {message}", Location(file=path), hint)])


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a fleet's kubeconfig is read once, fast


@cache
def _read(path: str, mtime_ns: int) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_LOADER)  # a safe loader (C or Python)


def _named(data: Any, key: str, name: str) -> dict[str, Any] | None:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(key.removesuffix("s"))
            return body if isinstance(body, dict) else {}
    return None


def load_context(path: str, context: str) -> KubeContext:
    """Check that `context` of kubeconfig `path` is usable; raise InputError naming both when not."""
    full = os.path.abspath(os.path.expanduser(path))
    try:
        data = _read(full, os.stat(full).st_mtime_ns)
    except FileNotFoundError:
        raise _problem(path, context, "no such file") from None
    except OSError as exc:
        raise _problem(path, context, f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"kubeconfig {path}, context {context}: malformed YAML{where}: {problem}",
                         Location(file=path, line=mark.line + 1 if mark else 0,
                                  column=mark.column + 1 if mark else 0)) from None
    if not isinstance(data, dict):
        raise _problem(path, context, "not a kubeconfig (expected a mapping with clusters, contexts and users)")
    ctx = _named(data, "contexts", context)
    if ctx is None:
        names = [str(c.get("name")) for c in data.get("contexts") or [] if isinstance(c, dict)]
        raise _problem(path, context, "no such context",
                       "contexts in this file: " + (", ".join(names) if names else "none")
                       + "; a cluster's context defaults to its name (set `context:` in the inventory)")
    cluster_name = str(ctx.get("cluster") or "")
    user_name = str(ctx.get("user") or "")
    cluster = _named(data, "clusters", cluster_name) if cluster_name else None
    if cluster is None:
        raise _problem(path, context, f"the context names cluster {cluster_name or '(none)'}, which the file "
                       "does not define")
    server = str(cluster.get("server") or "")
    if not server:
        raise _problem(path, context, f"cluster {cluster_name} has no server")
    ident: Identity | None = None
    if user_name:
        user = _named(data, "users", user_name)
        if user is None:
            raise _problem(path, context, f"the context names user {user_name}, which the file does not define")
        as_user = str(user.get("as") or "")
        groups = user.get("as-groups") or []
        if as_user or groups:
            if not isinstance(groups, list):
                raise _problem(path, context, f"user {user_name}: as-groups must be a list")
            ident = Identity(as_user, tuple(str(g) for g in groups))
    return KubeContext(full, context, cluster_name, user_name, server, ident)


__all__ = ["KubeContext", "default_kubeconfig", "load_context"]
