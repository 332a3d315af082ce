"""The cluster-client protocol: what the executor asks of one cluster, as one identity.

Input → output: an API version + kind, a namespace and a name (or a whole object) → plain JSON
data from the cluster, or one of the errors below. The executor (`velapy.execute`) only ever
talks to this protocol; `velapy.kube.client` is its one real implementation (the only module
that imports the `kubernetes` package) and tests use the emulator or an in-memory fake.

Errors are translated at this boundary into `ApiError` (the API server answered with a Status),
`Unreachable` (no answer: refused, reset, timed out, after the bounded retries) and `NotServed`
(discovery has no such kind). Their text never holds a request or response body beyond the
Status message, and never a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from velapy.errors import ClusterError, Location
from velapy.load.clusters import Identity

FIELD_MANAGER = "velapy"


@dataclass(frozen=True)
class ResourceType:
    """One kind as discovery serves it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        """The REST path of the collection (or of one object when `name` is given)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return base + (f"/{name}" if name else "")


@dataclass(frozen=True)
class Cause:
    """One entry of a Status's `details.causes` (e.g. a FieldManagerConflict on `.spec.replicas`)."""

    type: str
    field: str
    message: str
    manager: str = ""  # the field manager a FieldManagerConflict names ("" for other causes)


class KubeError(ClusterError):
    """A cluster refused or failed a request (exit 3)."""

    def __init__(self, cluster: str, message: str) -> None:
        self.cluster = cluster
        super().__init__(message, Location(cluster=cluster))


class ApiError(KubeError):
    """The API server answered with an error Status."""

    def __init__(self, cluster: str, status: int, reason: str, message: str,
                 causes: Sequence[Cause] = (), retry_after: float | None = None,
                 details: tuple[str, str] = ("", "")) -> None:
        self.status = status
        self.reason = reason
        self.server_message = message
        self.causes = tuple(causes)
        self.retry_after = retry_after
        self.details = details  # the Status's details (kind, name): what was refused
        super().__init__(cluster, f"HTTP {status} {reason}: {message}" if message else f"HTTP {status} {reason}")

    @property
    def transient(self) -> bool:
        """429 and 5xx are worth retrying; every other status is the answer."""
        return self.status == 429 or self.status >= 500


class Unreachable(KubeError):
    """The cluster did not answer (connection refused or reset, timeout) within the retries and deadline."""


class NotServed(KubeError):
    """Discovery knows no resource type for an apiVersion/kind in this cluster."""

    def __init__(self, cluster: str, api_version: str, kind: str) -> None:
        self.api_version = api_version
        self.kind = kind
        super().__init__(cluster, f"no resource type {api_version}/{kind} in cluster {cluster}")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: attempts, exponential backoff with jitter, and a deadline per request."""

    attempts: int = 5
    backoff: float = 0.2  # first pause, seconds; doubles each time
    max_backoff: float = 5.0
    deadline: float = 60.0  # seconds for one request including its retries
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


@dataclass(frozen=True)
class Access:
    """How to reach one cluster: a kubeconfig file and context, and whom to impersonate there."""

    cluster: str
    kubeconfig: str
    context: str
    identity: Identity | None = None  # Impersonate-User / Impersonate-Group on every request
    options: Mapping[str, Any] = field(default_factory=dict)


class Client(Protocol):
    """One cluster as one identity. Every call may raise ApiError, Unreachable or NotServed."""

    @property
    def cluster(self) -> str: ...

    @property
    def identity(self) -> Identity | None: ...

    def version(self) -> dict[str, Any]: ...

    def resource(self, api_version: str, kind: str) -> ResourceType: ...

    def refresh_discovery(self) -> None: ...

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self, rt: ResourceType, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]: ...

    def apply(self, rt: ResourceType, obj: Mapping[str, Any], *, force: bool = False,
              dry_run: bool = False, manager: str = FIELD_MANAGER) -> dict[str, Any]: ...

    def create(self, rt: ResourceType, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]: ...

    def replace(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def merge_patch(self, rt: ResourceType, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]: ...

    def delete(self, rt: ResourceType, namespace: str, name: str, *, uid: str = "", propagation: str = "",
               dry_run: bool = False, resource_version: str = "") -> None:
        """Preconditions: `uid` and `resource_version` (when given) must match the live object (else 409)."""

    def set_deadline(self, when: float | None) -> None:
        """No request (retries included) runs past `when` (time.monotonic()); None lifts the limit."""

    def close(self) -> None: ...


__all__ = ["FIELD_MANAGER", "Access", "ApiError", "Cause", "Client", "KubeError", "NotServed", "ResourceType",
           "RetryPolicy", "Unreachable"]
