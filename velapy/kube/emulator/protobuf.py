"""A Kubernetes protobuf request body → the JSON-shaped dict of the object, for a few kinds.

kubectl's typed clients (`auth can-i`, `auth whoami`, `create namespace|configmap|secret|serviceaccount`) send
`application/vnd.kubernetes.protobuf` and accept a JSON answer. The envelope is the 4-byte magic
`k8s\\0` then a `runtime.Unknown` message: field 1 the TypeMeta (apiVersion, kind), field 2 the
object's own bytes. Decoded: SelfSubjectAccessReview's spec, SelfSubjectReview (empty), and for
Namespace, ConfigMap, Secret and ServiceAccount the metadata (name, generateName, namespace, labels,
annotations) and the ConfigMap/Secret data. Any other protobuf body is refused by the server with 415.
"""

from __future__ import annotations

import base64
from typing import Any

MAGIC = b"k8s\x00"

_RESOURCE_FIELDS = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
_NON_RESOURCE_FIELDS = {1: "path", 2: "verb"}


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints, bytes for length-delimited."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            out.append((number, data[pos:pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    return {names[n]: v.decode() for n, v in fields(data) if n in names and isinstance(v, bytes) and v}


def _map(entries: list[bytes], binary: bool = False) -> dict[str, str]:
    out = {}
    for entry in entries:
        kv = dict(fields(entry))
        key, value = kv.get(1, b""), kv.get(2, b"")
        if isinstance(key, bytes) and isinstance(value, bytes):
            out[key.decode()] = base64.b64encode(value).decode() if binary else value.decode()
    return out


def _meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    for n, v in fields(data):
        if not isinstance(v, bytes):
            continue
        if n in (1, 2, 3) and v:  # Go's protobuf writes empty strings too: absent, as in JSON
            meta[{1: "name", 2: "generateName", 3: "namespace"}[n]] = v.decode()
        elif n == 11:
            labels.append(v)
        elif n == 12:
            annotations.append(v)
    if labels:
        meta["labels"] = _map(labels)
    if annotations:
        meta["annotations"] = _map(annotations)
    return meta


def decode(body: bytes) -> dict[str, Any]:
    """The object of a protobuf body (see the module docstring for what is understood)."""
    if not body.startswith(MAGIC):
        raise ProtobufError("not a Kubernetes protobuf body")
    envelope = dict(fields(body[len(MAGIC):]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2)
    if not isinstance(raw, bytes) or not isinstance(type_meta, bytes):
        raise ProtobufError("no object in the protobuf envelope")
    tm = _strings(type_meta, {1: "apiVersion", 2: "kind"})
    kind = tm.get("kind", "")
    if kind == "SelfSubjectAccessReview":
        return decode_access_review(raw)
    if kind == "SelfSubjectReview":  # `kubectl auth whoami`: nothing to read but the kind
        return {"apiVersion": tm.get("apiVersion", "authentication.k8s.io/v1"), "kind": kind}
    if kind not in ("Namespace", "ConfigMap", "Secret", "ServiceAccount"):
        raise ProtobufError(f"the emulator reads {kind or 'this'} objects only as JSON or YAML")
    obj: dict[str, Any] = {"apiVersion": tm.get("apiVersion", "v1"), "kind": kind}
    data: list[bytes] = []
    for n, v in fields(raw):
        if n == 1 and isinstance(v, bytes):
            obj["metadata"] = _meta(v)
        elif n == 2 and isinstance(v, bytes) and kind in ("ConfigMap", "Secret"):
            data.append(v)
        elif n == 3 and isinstance(v, bytes) and v and kind == "Secret":
            obj["type"] = v.decode()
        elif n == 3 and isinstance(v, bytes) and kind == "ConfigMap":
            obj.setdefault("binaryData", {}).update(_map([v], binary=True))
    if data:
        obj["data"] = _map(data, binary=kind == "Secret")
    return obj


def decode_access_review(raw: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for number, value in fields(raw):
        if number == 2 and isinstance(value, bytes):
            for n, v in fields(value):
                if n == 1 and isinstance(v, bytes):
                    spec["resourceAttributes"] = _strings(v, _RESOURCE_FIELDS)
                elif n == 2 and isinstance(v, bytes):
                    spec["nonResourceAttributes"] = _strings(v, _NON_RESOURCE_FIELDS)
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}
