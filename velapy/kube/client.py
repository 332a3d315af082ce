"""Access to one cluster (kubeconfig context + identity) → a `velapy.kube.Client` on the official client.

The only module that imports the `kubernetes` package. It uses the package for what it is good
at (kubeconfig credentials: tokens, client certificates, exec plugins, TLS; the REST transport)
and takes care of its sharp edges itself (research notes, executor.md §3):

* one `ApiClient` with its own `Configuration` per (cluster, identity); a kubeconfig file is parsed
  once per run (with libyaml) and each client's loader gets only its context, cluster and user,
  with `persist_config=False`; the process-global default configuration is never touched;
* impersonation headers are built per request (never as default headers, which would override
  per-call headers), with one `Impersonate-Group` header per group (urllib3's HTTPHeaderDict);
  kubeconfig `as` / `as-groups` are honoured (read by `velapy.kube.kubeconfig`);
* urllib3 retries are off (`retries=0`): this module owns a bounded retry loop with exponential
  backoff, jitter and a deadline, honouring `Retry-After`, on 429, 5xx, timeouts and connection
  errors only;
* discovery is this run's own, in memory, per API group version, refreshed once on a miss (a CRD
  created earlier in the run is found); no discovery cache file is shared between runs;
* `Configuration.debug` is never enabled (it prints request headers, tokens included), and no
  error text holds a response body beyond the Status message.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import urllib3
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.config.config_exception import ConfigException

from velapy.errors import InputError, Location
from velapy.kube import (
    FIELD_MANAGER,
    Access,
    ApiError,
    Cause,
    NotServed,
    ResourceType,
    RetryPolicy,
    Unreachable,
)
from velapy.kube.kubeconfig import KubeContext, load_context
from velapy.load.clusters import Identity

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
# the API server names the other manager in a FieldManagerConflict cause: `conflict with "kubectl" using v1`
_CONFLICT_WITH = re.compile(r'conflict with "((?:[^"\\]|\\.)*)"')


def _describe_transport(exc: BaseException) -> str:
    """A short, secret-free reason for a transport failure."""
    inner = getattr(exc, "reason", None)
    probe = inner if isinstance(inner, BaseException) else exc
    # NewConnectionError is a subclass of ConnectTimeoutError: test it first
    if isinstance(probe, urllib3.exceptions.NameResolutionError):
        return "host name not resolved"
    if isinstance(probe, urllib3.exceptions.NewConnectionError):
        return "connection refused"
    if isinstance(probe, urllib3.exceptions.ReadTimeoutError | urllib3.exceptions.ConnectTimeoutError):
        return "timed out"
    if isinstance(probe, urllib3.exceptions.ProtocolError):
        return "connection closed without a reply"
    if isinstance(probe, urllib3.exceptions.SSLError):
        return "TLS handshake failed"
    return type(probe).__name__


REFRESH_EVERY = 1.0  # seconds between two runs of the loader's credential refresh hook


def _throttle_refresh(cfg: Any, clock: Callable[[], float] = time.monotonic) -> None:
    """The kubeconfig loader installs a hook that runs before EVERY request: it checks whether an expiring
    token (exec plugin, OIDC) is due and re-sets the whole configuration (host, CA, proxy...), which costs
    more than the request's own headers. Run it at most once per REFRESH_EVERY seconds instead; a static
    token never changes, an expiring one is refreshed well before it expires."""
    if getattr(cfg, "refresh_api_key_hook", None) is None:
        return
    hook = [cfg.refresh_api_key_hook]
    last = [-REFRESH_EVERY]

    def throttled(c: Any) -> None:
        now = clock()
        if now - last[0] >= REFRESH_EVERY:
            last[0] = now
            hook[0](c)
            again = getattr(c, "refresh_api_key_hook", None)
            if again is not throttled and again is not None:  # the hook re-installs itself: keep it wrapped
                hook[0] = again
            c.refresh_api_key_hook = throttled

    cfg.refresh_api_key_hook = throttled


def _unquote(text: str) -> str:
    try:
        return str(json.loads(f'"{text}"'))
    except ValueError:
        return text


class KubeClient:
    """`velapy.kube.Client` over HTTP with the official client's credentials and transport."""

    def __init__(self, access: Access, ctx: KubeContext, policy: RetryPolicy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self._cluster = access.cluster
        self._ctx = ctx
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = random.Random()
        self._identity = access.identity if access.identity is not None else ctx.impersonate
        cfg = kclient.Configuration()
        try:
            kconfig.load_kube_config_from_dict(
                ctx.minimal(), context=ctx.context, client_configuration=cfg, persist_config=False)
        except ConfigException as exc:
            raise InputError(f"kubeconfig {ctx.file}, context {ctx.context}: {exc}",
                             Location(file=ctx.file, cluster=access.cluster)) from None
        cfg.retries = 0  # this module retries (see the module docstring)
        cfg.debug = False
        _throttle_refresh(cfg)
        self._api = kclient.ApiClient(configuration=cfg)
        self._lock = threading.Lock()
        self._until: float | None = None  # the caller's deadline for this cluster (see set_deadline)
        self._discovery: dict[str, dict[str, ResourceType]] = {}
        self._fresh: set[str] = set()  # group versions fetched since the last refresh

    # ------------------------------------------------------------------------------------------
    @property
    def cluster(self) -> str:
        return self._cluster

    @property
    def identity(self) -> Identity | None:
        return self._identity

    def close(self) -> None:
        self._api.close()

    def set_deadline(self, when: float | None) -> None:
        """A per-cluster deadline: no request (with its retries) goes on past `when`."""
        self._until = when

    # ------------------------------------------------------------------------------------------
    # transport

    def _headers(self, content_type: str) -> urllib3.HTTPHeaderDict:
        return urllib3.HTTPHeaderDict({"Accept": JSON, "Content-Type": content_type})

    def _send(self, method: str, path: str, query: Iterable[tuple[str, str]], body: Any,
              content_type: str, timeout: tuple[float, float]) -> tuple[int, bytes, Mapping[str, str]]:
        # the body is plain JSON data already: it goes to the transport as is (the client's sanitizer would
        # walk every field of it again, per request), which serialises it with json.dumps
        m, url, headers, _none, _post = self._api.param_serialize(
            method, path, query_params=list(query), header_params={"Accept": JSON, "Content-Type": content_type},
            body=None, auth_settings=["BearerToken"])
        hdrs = urllib3.HTTPHeaderDict(headers or {})
        ident = self._identity
        if ident is not None:
            if ident.user:
                hdrs["Impersonate-User"] = ident.user
            for g in ident.groups:  # one header per group: the API server reads them as a list
                hdrs.add("Impersonate-Group", g)
        resp = self._api.call_api(m, url, header_params=hdrs, body=body, _request_timeout=timeout)
        data = resp.read() or b""
        return int(resp.status), bytes(data), resp.headers

    def _error(self, status: int, data: bytes, headers: Mapping[str, str]) -> ApiError:
        reason, message, causes, detail = "", "", [], ("", "")
        try:
            st = json.loads(data)
        except ValueError:
            st = None
        if isinstance(st, dict):
            reason = str(st.get("reason") or "")
            message = str(st.get("message") or "")
            details = st.get("details") or {}
            if isinstance(details, dict):
                detail = (str(details.get("kind") or ""), str(details.get("name") or ""))
            for c in (details.get("causes") or []) if isinstance(details, dict) else []:
                if isinstance(c, dict):
                    text = str(c.get("message") or "")
                    m = _CONFLICT_WITH.search(text)
                    causes.append(Cause(str(c.get("reason") or c.get("type") or ""), str(c.get("field") or ""),
                                        text, _unquote(m.group(1)) if m else ""))
        retry_after: float | None = None
        raw = headers.get("Retry-After") if headers else None
        if raw:
            try:
                retry_after = max(0.0, float(raw))
            except ValueError:
                retry_after = None
        return ApiError(self._cluster, status, reason or _REASONS.get(status, "Error"), message, causes, retry_after,
                        detail)

    def request(self, method: str, path: str, *, query: Iterable[tuple[str, str]] = (), body: Any = None,
                content_type: str = JSON) -> Any:
        """One API call with bounded retries; the decoded JSON answer (None when empty)."""
        p = self._policy
        start = self._clock()
        deadline = start + p.deadline
        if self._until is not None and self._clock is time.monotonic:
            deadline = min(deadline, self._until)
        query = list(query)
        attempt = 0
        while True:
            attempt += 1
            remaining = max(0.05, deadline - self._clock())
            timeout = (min(p.connect_timeout, remaining), min(p.read_timeout, remaining))
            err: ApiError | Unreachable
            try:
                status, data, headers = self._send(method, path, query, body, content_type, timeout)
            except urllib3.exceptions.HTTPError as exc:
                err = Unreachable(self._cluster, f"cluster {self._cluster} ({self._ctx.server}) did not answer "
                                  f"{method} {path}: {_describe_transport(exc)}")
                retry_after = None
            else:
                if 200 <= status < 300:
                    return json.loads(data) if data else None
                err = self._error(status, data, headers)
                if not err.transient:
                    raise err
                retry_after = err.retry_after
            if attempt >= p.attempts:
                raise _exhausted(err, attempt)
            pause = min(p.max_backoff, p.backoff * 2 ** (attempt - 1)) * (0.5 + self._rng.random() / 2)
            if retry_after is not None:
                pause = max(pause, retry_after)
            if self._clock() + pause >= deadline:
                raise _exhausted(err, attempt, deadline=round(deadline - start, 1))
            self._sleep(pause)

    # ------------------------------------------------------------------------------------------
    # discovery

    def version(self) -> dict[str, Any]:
        out = self.request("GET", "/version")
        return out if isinstance(out, dict) else {}

    def _fetch(self, gv: str) -> dict[str, ResourceType]:
        path = f"/apis/{gv}" if "/" in gv else f"/api/{gv}"
        try:
            data = self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return {}
            raise
        group, _, version = gv.rpartition("/")
        out: dict[str, ResourceType] = {}
        for r in (data or {}).get("resources") or []:
            name = str(r.get("name") or "")
            if not name or "/" in name:
                continue
            kind = str(r.get("kind") or "")
            out.setdefault(kind, ResourceType(group, version, kind, name, bool(r.get("namespaced")),
                                              tuple(str(v) for v in r.get("verbs") or ())))
        return out

    def resource(self, api_version: str, kind: str) -> ResourceType:
        with self._lock:
            kinds = self._discovery.get(api_version)
            fresh = api_version in self._fresh
        if kinds is None or (kind not in kinds and not fresh):
            kinds = self._fetch(api_version)
            with self._lock:
                self._discovery[api_version] = kinds
                self._fresh.add(api_version)
        rt = kinds.get(kind)
        if rt is None:
            raise NotServed(self._cluster, api_version, kind)
        return rt

    def refresh_discovery(self) -> None:
        with self._lock:
            self._fresh.clear()

    # ------------------------------------------------------------------------------------------
    # objects

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            out = self.request("GET", rt.path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return out if isinstance(out, dict) else None

    def list(self, rt: ResourceType, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        out = self.request("GET", rt.path(namespace), query=query)
        items = (out or {}).get("items") or []
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", rt.api_version)
            item.setdefault("kind", rt.kind)
        return list(items)

    def apply(self, rt: ResourceType, obj: Mapping[str, Any], *, force: bool = False,
              dry_run: bool = False, manager: str = FIELD_MANAGER) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        query = [("fieldManager", manager)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        out = self.request("PATCH", rt.path(str(meta.get("namespace") or ""), str(meta.get("name") or "")),
                           query=query, body=dict(obj), content_type=APPLY_PATCH)
        return out if isinstance(out, dict) else {}

    def create(self, rt: ResourceType, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        query = [("fieldManager", FIELD_MANAGER)] + ([("dryRun", "All")] if dry_run else [])
        out = self.request("POST", rt.path(str(meta.get("namespace") or "")), query=query, body=dict(obj))
        return out if isinstance(out, dict) else {}

    def replace(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        out = self.request("PUT", rt.path(str(meta.get("namespace") or ""), str(meta.get("name") or "")),
                           query=[("fieldManager", FIELD_MANAGER)], body=dict(obj))
        return out if isinstance(out, dict) else {}

    def merge_patch(self, rt: ResourceType, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        out = self.request("PATCH", rt.path(namespace, name), query=[("fieldManager", FIELD_MANAGER)],
                           body=dict(patch), content_type=MERGE_PATCH)
        return out if isinstance(out, dict) else {}

    def delete(self, rt: ResourceType, namespace: str, name: str, *, uid: str = "", propagation: str = "",
               dry_run: bool = False, resource_version: str = "") -> None:
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions"}
        pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if pre:
            body["preconditions"] = pre
        if propagation:
            body["propagationPolicy"] = propagation
        query = [("dryRun", "All")] if dry_run else []
        self.request("DELETE", rt.path(namespace, name), query=query, body=body)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Gone", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 502: "BadGateway",
            503: "ServiceUnavailable", 504: "Timeout"}


def _exhausted(err: ApiError | Unreachable, attempts: int, deadline: float = 0.0) -> ApiError | Unreachable:
    why = f"gave up after {attempts} attempt{'s' if attempts != 1 else ''}" + \
        (f" (deadline {deadline:g}s)" if deadline else "")
    if isinstance(err, ApiError):
        return ApiError(err.cluster, err.status, err.reason, f"{err.server_message} ({why})".strip(),
                        err.causes, err.retry_after, err.details)
    return Unreachable(err.cluster, f"{err.diagnostics[0].message} ({why})")


def connect(access: Access, policy: RetryPolicy | None = None) -> KubeClient:
    """A client for `access`: the kubeconfig context is checked first (InputError naming file and context)."""
    return KubeClient(access, load_context(access.kubeconfig, access.context), policy)


__all__ = ["KubeClient", "connect"]
