"""Cluster names → a running fleet of emulated clusters and a kubeconfig for them.

`Fleet(["local", "a"])` builds one `Cluster` per name (each its own HTTP server on 127.0.0.1),
shares one RBAC table and one audit log between them, and writes a kubeconfig with one context
per cluster, named exactly like the cluster, whose user `<cluster>-admin` holds that cluster's
bearer token. The servers speak HTTPS with a self-signed certificate (tls.py) that the kubeconfig
names as the certificate authority: kubectl sends no bearer token over plain http. Every string
in the kubeconfig is quoted (an unquoted `n` or `on` would turn into a YAML 1.1 boolean for some
readers) and the file is written atomically, so another process can wait for it to appear.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from velapy.kube.emulator.auth import Authorizer
from velapy.kube.emulator.server import CRD_DELAY, JOURNAL_LIMIT, NAMESPACE_DELAY, AuditLog, Cluster
from velapy.kube.emulator.tls import certificate, server_context


class Fleet:
    """Several emulated clusters started and stopped together."""

    def __init__(self, names: Sequence[str], rbac: str | Path | dict[str, Any] | None = None,
                 ready_after: float = 0.0, audit_log: str | Path | None = None,
                 versions: Mapping[str, str] | None = None, tls: bool = True,
                 journal_limit: int | None = JOURNAL_LIMIT, crd_delay: float = CRD_DELAY,
                 namespace_delay: float = NAMESPACE_DELAY, hold_images: Sequence[str] = ()) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"cluster names repeat: {', '.join(names)}")
        self.authz = Authorizer.load(rbac)
        self.audit = AuditLog(str(audit_log)) if audit_log is not None else None
        context = server_context() if tls else None
        self.ca = certificate() if tls else b""
        self.clusters: dict[str, Cluster] = {
            n: Cluster(n, authz=self.authz, ready_after=ready_after, version=(versions or {}).get(n, ""),
                       audit=self.audit, tls=context, journal_limit=journal_limit, crd_delay=crd_delay,
                       namespace_delay=namespace_delay)
            for n in names}
        for c in self.clusters.values():
            c.store.held_images = tuple(hold_images)

    def __getitem__(self, name: str) -> Cluster:
        return self.clusters[name]

    def __iter__(self) -> Iterator[Cluster]:
        return iter(self.clusters.values())

    def __len__(self) -> int:
        return len(self.clusters)

    def names(self) -> list[str]:
        return list(self.clusters)

    def start(self) -> Fleet:
        for c in self.clusters.values():
            c.start()
        return self

    def stop(self) -> None:
        for c in self.clusters.values():
            c.stop()
        if self.audit is not None:
            self.audit.close()

    def reset(self) -> None:
        for c in self.clusters.values():
            c.reset()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def kubeconfig(self, current: str | None = None) -> dict[str, Any]:
        names = list(self.clusters)
        clusters, users, contexts = [], [], []
        for name, c in self.clusters.items():
            entry: dict[str, Any] = {"server": c.url}
            if self.ca:
                entry["certificate-authority-data"] = base64.b64encode(self.ca).decode()
            clusters.append({"name": name, "cluster": entry})
            users.append({"name": f"{name}-admin", "user": {"token": c.token}})
            contexts.append({"name": name, "context": {"cluster": name, "user": f"{name}-admin"}})
        return {"apiVersion": "v1", "kind": "Config", "preferences": {}, "clusters": clusters, "users": users,
                "contexts": contexts, "current-context": current or (names[0] if names else "")}

    def write_kubeconfig(self, path: str | Path, current: str | None = None) -> Path:
        """Write the kubeconfig atomically (a temp file renamed into place), mode 0600."""
        target = Path(path)
        text = _quoted_yaml(self.kubeconfig(current))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=str(target.parent))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def _quoted_yaml(value: Any, indent: int = 0) -> str:
    """Block YAML with every string double-quoted (JSON string syntax is valid YAML)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}\n"
        out = ""
        for k, v in value.items():
            key = json.dumps(str(k))
            if isinstance(v, dict | list) and v:
                out += f"{pad}{key}:\n" + _quoted_yaml(v, indent + 2)
            else:
                out += f"{pad}{key}: " + _quoted_yaml(v, 0)
        return out
    if isinstance(value, list):
        if not value:
            return "[]\n"
        out = ""
        for item in value:
            body = _quoted_yaml(item, indent + 2)
            out += f"{pad}- " + body[indent + 2:] if isinstance(item, dict | list) and item else f"{pad}- {body}"
        return out
    return json.dumps(value) + "\n"
