"""HTTP requests for one emulated cluster → Kubernetes API responses, a journal and audit events.

`Cluster` runs one `ThreadingHTTPServer` on 127.0.0.1 and answers the API paths real clients use:
discovery, the resource verbs of store.py, `selfsubjectaccessreviews` (for `kubectl auth can-i`)
and server-side Table output (for plain `kubectl get`). Each request is authenticated by bearer
token, impersonation headers are checked, RBAC is applied (auth.py), injected faults fire, and the
request is recorded in the in-memory journal (tests read it) and, when configured, as one
audit.k8s.io/v1 Event line in the audit log (metadata only: no bodies, no tokens).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import ssl
import stat
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from velapy.kube.emulator import kinds
from velapy.kube.emulator.auth import AUTHENTICATED, Authorizer, User, forbidden_message
from velapy.kube.emulator.kinds import ResourceType
from velapy.kube.emulator.protobuf import ProtobufError
from velapy.kube.emulator.protobuf import decode as decode_protobuf
from velapy.kube.emulator.store import APPLY, ApiError, Store, now_text

CRD_DELAY = 0.2  # seconds from a CRD's creation until it is Established and its kind served
NAMESPACE_DELAY = 0.2  # seconds a deleted namespace stays Terminating before the controller empties it
_PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",), "", False)
_WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


@dataclass
class Fault:
    """An injected failure: requests matching method, path (regex, searched) and user fire it.

    The first `after` matches pass untouched; then it fires `times` times (None = forever).
    `status` answers that code with a Status body (and `Retry-After` when `retry_after` is set);
    `delay` sleeps first (alone it is a slow server: the request is then served normally);
    `drop` closes the connection without an answer; `commit` performs the request before failing.
    `user` matches the authenticated or the impersonated user name.
    """

    method: str | None = None
    path: str | None = None
    user: str | None = None
    after: int = 0
    times: int | None = None
    status: int | None = None
    retry_after: int | None = None
    delay: float | None = None
    drop: bool = False
    commit: bool = False
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str, users: tuple[str, ...]) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        return self.user is None or self.user in users


@dataclass
class Request:
    """One request as the cluster saw it (the journal)."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    user: str = ""
    groups: tuple[str, ...] = ()
    impersonated_user: str = ""
    impersonated_groups: list[str] = field(default_factory=list)
    body: Any = None
    code: int = 0
    resource: str = ""
    subresource: str = ""
    api_group: str = ""
    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    verb: str = ""
    dry_run: bool = False
    field_manager: str = ""
    force: bool = False
    fault: bool = False
    user_agent: str = ""

    @property
    def is_write(self) -> bool:
        """A non-dry-run create/update/patch/delete of an object (whatever its answer; look at `code`)."""
        return (self.verb in _WRITE_VERBS and not self.dry_run and bool(self.resource)
                and self.resource not in ("selfsubjectaccessreviews", "selfsubjectreviews"))


@dataclass
class _Route:
    type: ResourceType | None = None
    namespace: str = ""
    name: str = ""
    sub: str = ""
    verb: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""  # plural as written in the URL (for unknown resources too)
    discovery: Any = None  # a discovery body to answer with


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, cluster: Cluster, tls: ssl.SSLContext | None) -> None:
        self.cluster = cluster
        self.tls = tls
        self.conns: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self.tls is not None:
            # the handshake happens in the handler thread, so a slow client cannot block accept()
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (or a stopped cluster) is not the emulator's problem

    def close_all(self) -> None:
        with self.conn_lock:
            conns = list(self.conns)
            self.conns.clear()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)


def _version_doc(version: str) -> dict[str, Any]:
    text = version.strip().lstrip("v") or "1.32.4"
    parts = ([*text.split("-", 1)[0].split("."), "0", "0"])[:3]
    major, minor, patch = parts[0], parts[1], parts[2] or "0"
    return {"major": major, "minor": minor, "emulationMajor": major, "emulationMinor": minor,
            "gitVersion": f"v{major}.{minor}.{patch}", "gitCommit": "0" * 40, "gitTreeState": "clean",
            "buildDate": "2025-04-22T16:03:51Z", "goVersion": "go1.23.8", "compiler": "gc",
            "platform": "linux/amd64"}


JOURNAL_LIMIT = 50_000  # requests a cluster's journal keeps (each holds its body: a few KB)


class Cluster:
    """One emulated cluster: a store, an HTTP server on 127.0.0.1, a journal and faults."""

    def __init__(self, name: str, *, authz: Authorizer | None = None, ready_after: float = 0.0,
                 version: str = "", audit: Callable[[dict[str, Any]], None] | None = None,
                 token: str = "", tls: ssl.SSLContext | None = None, journal_limit: int | None = JOURNAL_LIMIT,
                 crd_delay: float = CRD_DELAY, namespace_delay: float = NAMESPACE_DELAY) -> None:
        self.name = name
        self.authz = authz if authz is not None else Authorizer.load(None)
        self.version = version
        self.store = Store(ready_after=ready_after, crd_delay=crd_delay, namespace_delay=namespace_delay)
        # the latest requests (the oldest forgotten past `journal_limit`; the audit log keeps every one)
        self.journal: deque[Request] = deque(maxlen=journal_limit)
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._audit = audit
        self.tls = tls
        self.stopping = threading.Event()
        self.epoch = 0  # bumped by reset(): requests of an older epoch are forgotten
        # the kubeconfig token of this cluster (its own, so a token for one cluster fails at another)
        self.token = token or secrets.token_hex(16)

    def authenticate(self, token: str) -> User | None:
        if token and secrets.compare_digest(token, self.token):
            return self.authz.kubeconfig_user
        return self.authz.authenticate(token)

    # ------------------------------------------------------------------------------------------
    # lifecycle

    @property
    def url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        self.stopping.clear()
        server = _Server(self.port, self, self.tls)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"emulator-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        """Back to a fresh cluster: built-in namespaces only, empty journal, no faults. Requests still held
        by a delay fault are dropped (and neither commit nor reach the new journal)."""
        with self.lock:
            self.epoch += 1
            self.faults.clear()
        self.stopping.set()  # wake the held requests; they see the new epoch
        if self.running:
            self.stopping.clear()
        self.store.reset()
        with self.lock:
            self.journal.clear()

    # ------------------------------------------------------------------------------------------
    # state for tests

    def _type(self, api_version: str, kind: str) -> ResourceType:
        t = self.store.types.by_kind(api_version, kind)
        if t is None:
            raise KeyError(f"cluster {self.name} serves no {kind} in {api_version}")
        return t

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        t = self._type(api_version, kind)
        self.store.tick()
        try:
            return self.store.get(t, namespace, name)
        except ApiError:
            return None

    def put_object(self, obj: dict[str, Any], manager: str = "kubectl") -> dict[str, Any]:
        """Create or replace an object directly (its namespace is created when missing)."""
        t = self._type(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        return self.store.seed(t, obj, manager)

    def set_status(self, api_version: str, kind: str, namespace: str, name: str,
                   status: dict[str, Any]) -> dict[str, Any]:
        return self.store.set_status(self._type(api_version, kind), namespace, name, status)

    def hold_unready(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.store.hold(self._type(api_version, kind), namespace, name)

    def release(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.store.release(self._type(api_version, kind), namespace, name)

    def objects(self, api_version: str, kind: str, namespace: str = "") -> list[dict[str, Any]]:
        t = self._type(api_version, kind)
        return [self.store.serve(t, o) for o in self.store.list_objects(t, namespace)["items"]]

    # ------------------------------------------------------------------------------------------
    # journal and faults

    def writes(self, kind: str | None = None, namespace: str | None = None, name: str | None = None
               ) -> list[Request]:
        """Non-dry-run POST/PUT/PATCH/DELETE requests aimed at an object (kind: Kind or plural), failed ones
        included (a 409 or a fault is still an attempt; filter on `code` to keep the successful ones)."""
        with self.lock:
            return [r for r in self.journal if r.is_write
                    and (kind is None or kind in (r.kind, r.resource))
                    and (namespace is None or r.namespace == namespace)
                    and (name is None or r.name == name)]

    def count(self, method: str | None = None) -> int:
        with self.lock:
            return sum(1 for r in self.journal if method is None or r.method == method.upper())

    def clear_journal(self) -> None:
        with self.lock:
            self.journal.clear()

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _fault_for(self, method: str, path: str, users: tuple[str, ...]) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if not f.matches(method, path, users):
                    continue
                f.seen += 1
                if f.seen <= f.after or (f.times is not None and f.fired >= f.times):
                    continue
                f.fired += 1
                return f
        return None

    def _record(self, req: Request, audit: dict[str, Any]) -> None:
        with self.lock:
            self.journal.append(req)
        if self._audit is not None:
            self._audit(audit)

    # ------------------------------------------------------------------------------------------
    # routing

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> _Route:
        self.store.tick()  # controllers first: a CRD Established by now is routed and discovered
        parts = [p for p in path.split("/") if p]
        reg = self.store.types
        if not parts:
            raise ApiError(404, "the server could not find the requested resource")
        if parts[0] == "version" and len(parts) == 1:
            return _Route(discovery=_version_doc(self.version))
        if parts[0] in ("healthz", "livez", "readyz") and len(parts) == 1:
            return _Route(discovery="ok")
        if parts[0] == "openapi" and len(parts) == 2 and parts[1] == "v2":
            return _Route(discovery=kinds.openapi_v2(_version_doc(self.version)["gitVersion"]))
        if parts[0] == "openapi" and len(parts) >= 2 and parts[1] == "v3":
            if len(parts) == 2:
                return _Route(discovery=kinds.openapi_root(reg))
            gv = parts[2:]
            doc = None
            if gv[0] == "api" and len(gv) == 2:
                doc = kinds.openapi_gv(reg, "", gv[1])
            elif gv[0] == "apis" and len(gv) == 3:
                doc = kinds.openapi_gv(reg, gv[1], gv[2])
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _Route(discovery=doc)
        if parts[0] == "api":
            if len(parts) == 1:
                return _Route(discovery=kinds.core_versions(f"127.0.0.1:{self.port}"))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return _Route(discovery=kinds.group_list(reg))
            if len(parts) == 2:
                doc = kinds.group_doc(reg, parts[1])
                if doc is None:
                    raise ApiError(404, "the server could not find the requested resource")
                return _Route(discovery=doc)
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            doc = kinds.resource_list(reg, group, version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return _Route(discovery=doc)
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and reg.find(group, version, rest[2]) is not None:
            ns, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = "/".join(rest[2:])
        t = reg.find(group, version, plural)
        r = _Route(t, ns, name, sub, api_group=group, api_version=version, resource=plural)
        watch = query.get("watch", [""])[0] in ("true", "1")
        collection = not name
        r.verb = {"GET": "watch" if watch else ("list" if collection else "get"),
                  "POST": "create", "PUT": "update", "PATCH": "patch",
                  "DELETE": "deletecollection" if collection else "delete"}.get(method, method.lower())
        return r


def _table(items: list[dict[str, Any]], rv: str) -> dict[str, Any]:
    now = time.time()
    rows = []
    for obj in items:
        meta = obj.get("metadata", {})
        created = meta.get("creationTimestamp", "")
        age = "<unknown>"
        if created:
            ts = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
            secs = max(0, int(now - ts))
            age = f"{secs}s" if secs < 120 else (f"{secs // 60}m" if secs < 7200 else f"{secs // 3600}h")
        partial = {k: v for k, v in meta.items() if k != "managedFields"}
        rows.append({"cells": [meta.get("name", ""), age],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": partial}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a "
                 "namespace.", "priority": 0},
                {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp "
                 "representing the server time when this object was created.", "priority": 0}],
            "rows": rows}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    # ------------------------------------------------------------------------------------------

    def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, _Raw) else None
        data = raw.data if raw is not None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", raw.content_type if raw is not None else
                         "text/plain; charset=utf-8" if isinstance(body, str) else "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self, method: str) -> None:
        cluster = self.server.cluster
        received = datetime.now(UTC)
        self._audit_id = str(uuid.uuid4())
        split = urlsplit(self.path)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        req = Request(method, path, query, ctype, user_agent=self.headers.get("User-Agent", ""))
        epoch = cluster.epoch
        dry_values = query.get("dryRun", [])
        req.dry_run = "All" in dry_values
        req.field_manager = query.get("fieldManager", [""])[0]
        req.force = query.get("force", [""])[0] in ("true", "1")
        code: int = 500
        body: Any = None
        extra: dict[str, str] = {}
        imp_groups: list[str] = []
        dropped = False
        route: _Route | None = None
        try:
            auth = self.headers.get("Authorization", "")
            user = cluster.authenticate(auth[7:].strip() if auth.lower().startswith("bearer ") else "")
            if user is None and not auth and path.rstrip("/") in _PUBLIC_PATHS:
                user = ANONYMOUS  # the system:public-info-viewer ClusterRole binds these to everyone
            if user is None:
                raise ApiError(401, "Unauthorized")
            req.user, req.groups = user.name, user.groups
            who, groups = self._impersonate(cluster, req, user.name, user.groups)
            try:
                req.body = self._parse_body(raw, ctype)
            except _Unsupported as e:
                raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                               f"include: application/json, application/yaml ({e})", "UnsupportedMediaType") from None
            except ValueError as e:
                raise ApiError(400, f"the body of the request could not be decoded: {e}") from None
            imp_groups = req.impersonated_groups
            route = cluster.route(method, path, query)
            self._describe(req, route)
            bad = [v for v in dry_values if v != "All"]
            if bad and route.type is not None:
                # ValidateCreateOptions and friends (apimachinery validation): only "All" is a dry-run directive
                options = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}.get(
                    route.verb, "DeleteOptions")
                raise ApiError(422, f'{options}.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{{'
                               + ", ".join(json.dumps(v) for v in dry_values) + '}: supported values: "All"',
                               "Invalid", {"group": "meta.k8s.io", "kind": options, "causes": [
                                   {"reason": "FieldValueNotSupported", "field": "dryRun",
                                    "message": 'Unsupported value: ' + json.dumps(dry_values) +
                                    ': supported values: "All"'}]})
            fault = cluster._fault_for(method, path, (user.name, req.impersonated_user))
            if fault is not None:
                req.fault = True
                if fault.delay:
                    cluster.stopping.wait(fault.delay)  # a stop or reset ends the wait
                    if not cluster.running or cluster.epoch != epoch:
                        raise _Dropped()
                if fault.drop or fault.status:
                    if fault.commit:
                        with contextlib.suppress(ApiError):
                            self._serve(cluster, route, req, who, groups)
                    if fault.drop:
                        dropped = True
                        raise _Dropped()
                    assert fault.status is not None
                    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                    err = ApiError(fault.status, f"injected fault: {fault.status}")
                    if fault.status == 429:
                        err.message = "Too many requests, please try again later."
                    raise _WithHeaders(err, headers)
            code, body, extra = self._serve(cluster, route, req, who, groups)
        except _Dropped:
            code = 0
        except _WithHeaders as e:
            code, body, extra = e.error.code, e.error.status(), e.headers
        except ApiError as e:
            code, body = e.code, e.status()
        except Exception as e:
            err = ApiError(500, f"emulator internal error: {type(e).__name__}: {e}")
            code, body = err.code, err.status()
        req.code = code
        if cluster.epoch == epoch:  # journal first: a client that has its answer finds its request recorded
            cluster._record(req, self._audit_event(cluster, req, received, imp_groups))
        if isinstance(body, _Watch):
            try:
                self._stream(cluster, body)
            except OSError:
                self.close_connection = True
        elif dropped or code == 0:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        else:
            try:
                self._send(code, body, extra)
            except OSError:
                self.close_connection = True

    def _stream(self, cluster: Cluster, watch: _Watch) -> None:
        """A watch: chunked JSON events, found by polling the store (there is no event history)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", self._audit_id)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        store = cluster.store
        since = int(watch.resource_version) if watch.resource_version.isdigit() else 0
        known: dict[tuple[str, str], dict[str, Any]] = {}
        deadline = time.monotonic() + watch.timeout
        first = True
        while cluster.running and time.monotonic() < deadline:
            store.tick()
            items = [store.serve(watch.type, o) for o in store.list_objects(
                watch.type, watch.namespace, watch.label_selector, watch.field_selector)["items"]]
            current = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in items}
            events = []
            for key, obj in current.items():
                rv = int(obj["metadata"].get("resourceVersion") or 0)
                old = known.get(key)
                if old is None:
                    if not first or since == 0:
                        events.append(("ADDED", obj))
                    elif rv > since:  # from a resourceVersion: what changed since, as it changed
                        created = store.created_at(watch.type, key[0], key[1])
                        events.append(("ADDED" if created > since else "MODIFIED", obj))
                elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                    events.append(("MODIFIED", obj))
            events.extend(("DELETED", old) for key, old in known.items() if key not in current)
            if first and since:
                events.extend(("DELETED", obj) for obj in store.deleted_since(
                    watch.type, watch.namespace, since, watch.label_selector, watch.field_selector))
            known, first = current, False
            for kind, obj in events:
                data = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
            time.sleep(0.05)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _parse_body(self, raw: bytes, ctype: str) -> Any:
        if not raw:
            return None
        if ctype == "application/vnd.kubernetes.protobuf":
            try:
                return decode_protobuf(raw)
            except ProtobufError as e:
                raise _Unsupported(str(e)) from None
        text = raw.decode("utf-8")
        if ctype == APPLY or ctype.endswith("yaml"):
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ValueError(str(e).splitlines()[0]) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(str(e)) from None

    def _impersonate(self, cluster: Cluster, req: Request, user: str, groups: tuple[str, ...]
                     ) -> tuple[str, tuple[str, ...]]:
        as_user = self.headers.get("Impersonate-User")
        as_groups = self.headers.get_all("Impersonate-Group") or []
        if not as_user and not as_groups:
            return user, groups
        if not as_user:
            raise ApiError(500, f"requested {[{'Group': g} for g in as_groups]} without impersonating a user")
        req.impersonated_user = as_user
        req.impersonated_groups = list(as_groups)
        kind = "serviceaccounts" if as_user.startswith("system:serviceaccount:") else "users"
        checks = [(kind, as_user)] + [("groups", g) for g in as_groups]
        for resource, name in checks:
            target = name
            ns = ""
            if resource == "serviceaccounts":
                ns, target = name.split(":")[2:4] if name.count(":") >= 3 else ("", name)
            if not cluster.authz.allowed(cluster.name, user, groups, "impersonate", "", resource, ns, target):
                raise ApiError(403, f'{resource} "{target}" is forbidden: User "{user}" cannot impersonate resource '
                               f'"{resource}" in API group "" ' + (f'in the namespace "{ns}"' if ns
                                                                  else "at the cluster scope"),
                               "Forbidden", {"name": target, "kind": resource})
        # system:authenticated is added once (an impersonated group list may already name it)
        return as_user, (*tuple(as_groups), *(() if AUTHENTICATED in as_groups else (AUTHENTICATED,)))

    def _describe(self, req: Request, route: _Route) -> None:
        req.verb = route.verb or ("get" if req.method == "GET" else req.method.lower())
        req.resource = route.resource
        req.subresource = route.sub
        req.api_group = route.api_group
        req.api_version = route.api_version
        req.namespace = route.namespace
        req.name = route.name
        if req.method == "POST" and not route.name and isinstance(req.body, dict):
            req.name = str((req.body.get("metadata") or {}).get("name") or "")  # as audit's objectRef does
        if route.type is not None:
            req.kind = route.type.kind

    def _serve(self, cluster: Cluster, route: _Route, req: Request, user: str, groups: tuple[str, ...]
               ) -> tuple[int, Any, dict[str, str]]:
        store = cluster.store
        store.tick()
        if route.discovery is not None:
            if req.method not in ("GET", "HEAD"):
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               "MethodNotAllowed")
            if isinstance(route.discovery, dict) and route.discovery.get("swagger") == "2.0" and \
                    "protobuf" in self.headers.get("Accept", ""):
                return 200, _Raw(kinds.openapi_v2_protobuf(route.discovery), kinds.OPENAPI_V2_PROTOBUF), {}
            return 200, route.discovery, {}
        t = route.type
        if t is None:
            raise ApiError(404, "the server could not find the requested resource")
        if t.plural == "selfsubjectaccessreviews" and t.group == "authorization.k8s.io":
            if req.method != "POST":
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               "MethodNotAllowed")
            return 201, self._access_review(cluster, req.body, user, groups), {}
        if t.plural == "selfsubjectreviews" and t.group == "authentication.k8s.io":
            if req.method != "POST":
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               "MethodNotAllowed")
            return 201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                         "metadata": {"creationTimestamp": None},
                         "status": {"userInfo": {"username": user, "groups": list(groups)}}}, {}
        resource = t.plural + (f"/{route.sub}" if route.sub else "")
        if not cluster.authz.allowed(cluster.name, user, groups, route.verb, t.group, resource, route.namespace,
                                     route.name):
            raise ApiError(403, forbidden_message(user, route.verb, t.group, resource, route.namespace, route.name),
                           "Forbidden", {"name": route.name, "group": t.group, "kind": t.plural}
                           if route.name else {"group": t.group, "kind": t.plural})
        if route.sub and (route.sub != "status" or not t.status):
            raise ApiError(404, "the server could not find the requested resource")
        if t.namespaced and not route.namespace and route.verb not in ("list", "watch"):
            raise ApiError(404, "the server could not find the requested resource")
        manager = req.field_manager or _manager_from_agent(req.user_agent)
        q = req.query
        dry = req.dry_run
        validation = q.get("fieldValidation", [""])[0]
        if route.verb == "patch" and req.content_type == APPLY and not route.sub and \
                not store.exists(t, route.namespace, route.name) and \
                not cluster.authz.allowed(cluster.name, user, groups, "create", t.group, t.plural, route.namespace,
                                          route.name):
            # an apply that creates is also a create: the patch handler authorizes it as one (handlers/patch.go,
            # createAuthorizerAttributes), so `get`+`patch` alone cannot create by server-side apply
            raise ApiError(403, forbidden_message(user, "create", t.group, t.plural, route.namespace, route.name),
                           "Forbidden", {"name": route.name, "group": t.group, "kind": t.plural})
        if route.verb == "get":
            obj = store.get(t, route.namespace, route.name)
            return 200, self._maybe_table([obj], obj["metadata"].get("resourceVersion", ""), obj), {}
        if route.verb == "list":
            doc = store.list_objects(t, route.namespace, q.get("labelSelector", [""])[0],
                                     q.get("fieldSelector", [""])[0])
            return 200, self._maybe_table(doc["items"], doc["metadata"]["resourceVersion"], doc), {}
        if route.verb == "watch":
            if route.name:  # the old /…/name?watch=true form: a watch on one name
                q = {**q, "fieldSelector": [f"metadata.name={route.name}"]}
            timeout = float(q.get("timeoutSeconds", ["300"])[0] or 300)
            return 200, _Watch(t, route.namespace, q.get("labelSelector", [""])[0], q.get("fieldSelector", [""])[0],
                               q.get("resourceVersion", [""])[0], min(timeout, 1800.0)), {}
        warnings = store.collect_warnings()
        answer = self._verb(cluster, route, req, manager, dry, validation)
        if warnings:
            # RFC 7234 warn-code 299, as the apiserver's warning recorder sends them
            return answer[0], answer[1], {**answer[2], "Warning": ", ".join(
                '299 - ' + json.dumps(w) for w in dict.fromkeys(warnings))}
        return answer

    def _verb(self, cluster: Cluster, route: _Route, req: Request, manager: str, dry: bool, validation: str
              ) -> tuple[int, Any, dict[str, str]]:
        """The writes: create, update, patch (apply), delete, deletecollection."""
        store, q = cluster.store, req.query
        assert route.type is not None
        t = route.type
        if route.verb == "create":
            if route.name:
                raise ApiError(405, "the server does not allow this method on the requested resource",
                               "MethodNotAllowed")
            return 201, store.create(t, route.namespace, req.body, manager, dry, validation), {}
        if route.verb == "update":
            return 200, store.update(t, route.namespace, route.name, req.body, manager, dry, route.sub,
                                     validation), {}
        if route.verb == "patch":
            obj, code = store.patch(t, route.namespace, route.name, req.body, req.content_type,
                                    req.field_manager if req.content_type == APPLY else manager,
                                    force=req.force, dry_run=dry, sub=route.sub, validation=validation)
            return code, obj, {}
        if route.verb == "delete":
            options = req.body if isinstance(req.body, dict) else {}
            for k in ("propagationPolicy", "orphanDependents"):
                if k in q:
                    options[k] = q[k][0] if k == "propagationPolicy" else q[k][0] == "true"
            pre = dict(options.get("preconditions") or {})
            for k in ("uid", "resourceVersion"):
                if f"preconditions.{k}" in q:
                    pre[k] = q[f"preconditions.{k}"][0]
            options["preconditions"] = pre
            answer, code = store.delete_answer(t, route.namespace, route.name, options, dry)
            return code, answer, {}
        if route.verb == "deletecollection":
            doc = store.list_objects(t, route.namespace, q.get("labelSelector", [""])[0],
                                     q.get("fieldSelector", [""])[0])
            for item in doc["items"]:
                meta = item["metadata"]
                store.delete(t, meta.get("namespace", ""), meta["name"], {}, dry)
            return 200, doc, {}
        raise ApiError(405, "the server does not allow this method on the requested resource", "MethodNotAllowed")

    def _maybe_table(self, items: list[dict[str, Any]], rv: str, doc: dict[str, Any]) -> Any:
        accept = self.headers.get("Accept", "")
        if "as=Table" in accept:
            return _table(items, rv)
        return doc

    def _access_review(self, cluster: Cluster, body: Any, user: str, groups: tuple[str, ...]) -> dict[str, Any]:
        spec = (body or {}).get("spec") or {}
        attrs = spec.get("resourceAttributes")
        out = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
               "metadata": {"creationTimestamp": None}, "spec": spec}
        if attrs is None:
            out["status"] = {"allowed": True}  # non-resource URLs (discovery, /healthz) are open to everyone here
            return out
        resource = str(attrs.get("resource", ""))
        if attrs.get("subresource"):
            resource += "/" + str(attrs["subresource"])
        ok = cluster.authz.allowed(cluster.name, user, groups, str(attrs.get("verb", "")), str(attrs.get("group", "")),
                                   resource, str(attrs.get("namespace", "")), str(attrs.get("name", "")))
        out["status"] = {"allowed": ok}
        return out

    def _audit_event(self, cluster: Cluster, req: Request, received: datetime, imp_groups: list[str]
                     ) -> dict[str, Any]:
        uri = self.path
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": self._audit_id,
            "stage": "ResponseComplete", "requestURI": uri, "verb": req.verb or req.method.lower(),
            "user": {"username": req.user, "groups": list(req.groups)} if req.user else {"username": ""},
            "sourceIPs": ["127.0.0.1"], "userAgent": req.user_agent,
        }
        if req.impersonated_user:
            event["impersonatedUser"] = {"username": req.impersonated_user, "groups": [
                *list(imp_groups), *([] if AUTHENTICATED in imp_groups else [AUTHENTICATED])]}
        if req.resource:
            ref: dict[str, Any] = {"resource": req.resource, "apiGroup": req.api_group,
                                   "apiVersion": req.api_version}
            if req.namespace:
                ref["namespace"] = req.namespace
            if req.name:
                ref["name"] = req.name
            if req.subresource:
                ref["subresource"] = req.subresource
            event["objectRef"] = ref
        event["responseStatus"] = {"metadata": {}, "code": req.code}
        event["requestReceivedTimestamp"] = received.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event["stageTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        event["cluster"] = cluster.name
        return event


class _Dropped(Exception):
    pass


@dataclass(frozen=True)
class _Watch:
    type: ResourceType
    namespace: str
    label_selector: str
    field_selector: str
    resource_version: str
    timeout: float


@dataclass(frozen=True)
class _Raw:
    """An answer that is bytes of its own content type (the protobuf /openapi/v2)."""

    data: bytes
    content_type: str


class _Unsupported(Exception):
    pass


class _WithHeaders(Exception):
    def __init__(self, error: ApiError, headers: dict[str, str]) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = headers


def _manager_from_agent(agent: str) -> str:
    """The field manager of a write without `fieldManager`: the user agent's first word, as the server does."""
    head = agent.split("/", 1)[0].strip()
    return head or "unknown"


class AuditLog:
    """Appends audit events as JSON lines to a file (thread-safe). Events carry request bodies,
    Secrets' among them: the file is readable by its owner only (0600, an existing one tightened)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                os.fchmod(fd, 0o600)
        except OSError:  # someone else's file, or a device: it keeps its mode
            pass
        self._fh: IO[str] | None = os.fdopen(fd, "a", encoding="utf-8")  # closed by close()

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, separators=(",", ":"))
        with self._lock:
            if self._fh is not None:
                self._fh.write(line + "\n")
                self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


__all__ = ["AuditLog", "Cluster", "Fault", "Request", "now_text"]
