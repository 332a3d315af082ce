"""A Terraform component → the `terraform.core.oam.dev/v1beta2` `Configuration` KubeVela renders.

KubeVela renders a component whose ComponentDefinition has `schematic.terraform` without CUE
(kubevela `pkg/appfile/appfile.go`, `generateTerraformConfigurationWorkload`): the properties are
decoded into terraform-controller's typed `ConfigurationSpec` (so a property named like one of its
fields sets that field, unknown sub-fields are dropped and a wrong type fails), then

* `writeConnectionSecretToRef`, `providerRef`, `gitCredentialsSecretReference` not given take the
  definition's; the connection Secret's namespace defaults to the application's;
* `spec.hcl` (type `hcl`) or `spec.remote` + `spec.path` (type `remote`) come from the definition;
* `spec.variable` is every property except `writeConnectionSecretToRef`, `customRegion`,
  `providerRef`, `forceDelete` and `gitCredentialsSecretReference`;
* metadata is the component's name, the application's namespace and the definition's annotations.

The typed object is marshalled back as Go does, so the fields Go always writes are there too
(`metadata.creationTimestamp: null`, `spec.gitRef: {}`, `status: {apply: {}, destroy: {}}`); the
executor drops them before applying, as it drops any server-owned field.

A definition read from a file keeps `type` as written; one without `type` is taken as `hcl`, the
default the CRD gives it once installed (KubeVela reading the same file offline would leave both
`hcl` and `remote` out).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from velapy.errors import Diagnostic, InputError, Location

API_VERSION = "terraform.core.oam.dev/v1beta2"
KIND = "Configuration"
# properties KubeVela keeps out of spec.variable (appfile.go: WriteConnectionSecretToRefKey, ...)
NOT_VARIABLES = ("writeConnectionSecretToRef", "customRegion", "providerRef", "forceDelete",
                 "gitCredentialsSecretReference")
CONVERT_ERROR = "failed to convert Terraform component properties"

# Go's typed structs, as (json name, type, omitempty). A type is "string", "bool", "raw" (any JSON),
# a struct (a tuple of fields), or ("ptr", type) for a pointer (nil when absent, so omitted).
_Field = tuple[str, Any, bool]
_SECRET_REF: tuple[_Field, ...] = (("name", "string", False), ("namespace", "string", True))  # crossplane
_REFERENCE: tuple[_Field, ...] = (("name", "string", False), ("namespace", "string", True))
_CORE_SECRET_REF: tuple[_Field, ...] = (("name", "string", True), ("namespace", "string", True))  # core/v1
_GIT_REF: tuple[_Field, ...] = (("branch", "string", True), ("tag", "string", True), ("commit", "string", True))
_BACKEND: tuple[_Field, ...] = (
    ("secretSuffix", "string", True), ("inClusterConfig", "bool", True), ("inline", "string", True),
    ("backendType", "string", True),
    ("kubernetes", ("ptr", (("secret_suffix", "string", False), ("namespace", ("ptr", "string"), True))), True),
    ("s3", ("ptr", (("region", ("ptr", "string"), True), ("bucket", "string", False), ("key", "string", False))),
     True),
)
SPEC: tuple[_Field, ...] = (
    ("hcl", "string", True),
    ("remote", "string", True),
    ("gitRef", _GIT_REF, True),  # a struct value: Go writes it even when empty
    ("variable", ("ptr", "raw"), True),
    ("backend", ("ptr", _BACKEND), True),
    ("path", "string", True),
    ("writeConnectionSecretToRef", ("ptr", _SECRET_REF), True),
    ("providerRef", ("ptr", _REFERENCE), True),
    ("JobEnv", ("ptr", "raw"), True),
    ("inlineCredentials", "bool", True),
    ("deleteResource", ("ptr", "bool"), True),
    ("customRegion", "string", True),
    ("forceDelete", ("ptr", "bool"), True),
    ("gitCredentialsSecretReference", ("ptr", _CORE_SECRET_REF), True),
    ("terraformCredentialsSecretReference", ("ptr", _CORE_SECRET_REF), True),
    ("terraformRCConfigMapReference", ("ptr", _CORE_SECRET_REF), True),
    ("terraformCredentialsHelperConfigMapReference", ("ptr", _CORE_SECRET_REF), True),
)


class _Mismatch(Exception):
    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _go_name(t: Any) -> str:
    if t == "bool":
        return "bool"
    if t == "string":
        return "string"
    if isinstance(t, tuple) and t and t[0] == "ptr":
        return "*" + _go_name(t[1])
    return "struct"


def _decode(t: Any, v: Any, path: tuple[str, ...]) -> Any:
    """`v` decoded into Go type `t` and encoded back (encoding/json's rules); None means "zero"."""
    if isinstance(t, tuple) and t and t[0] == "ptr":
        return None if v is None else ("set", _decode(t[1], v, path))
    if v is None:  # JSON null leaves a value at its zero
        return None
    if t == "raw":
        return v
    if t in ("string", "bool"):
        if _json_kind(v) != t:
            raise _Mismatch(path, f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                                  f"{'.'.join(path)} of type {t}")
        return v
    if not isinstance(v, dict):
        raise _Mismatch(path, f"json: cannot unmarshal {_json_kind(v)} into Go struct field "
                              f"{'.'.join(path)} of type {_go_name(t)}")
    return _decode_struct(t, v, path)


def _decode_struct(fields: tuple[_Field, ...], data: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """A JSON object decoded into a struct: a key sets the field whose name it matches ignoring case
    (Go's rule; of several such keys the last one stays); other keys are dropped."""
    got: dict[str, Any] = {}
    for name, t, _omit in fields:
        matches = [k for k in data if k.lower() == name.lower()]  # each sets the field: the last one stays
        key = matches[-1] if matches else None
        if key is not None:
            got[name] = _decode(t, data[key], (*path, name))
    return _encode_struct(fields, got)


def _encode_struct(fields: tuple[_Field, ...], got: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, t, omit in fields:
        v = got.get(name)
        if isinstance(v, tuple) and v[:1] == ("set",):  # a pointer that is set: written, even to a zero
            out[name] = _zero(t[1]) if v[1] is None else v[1]
            continue
        if v is None:
            if isinstance(t, tuple) and t and t[0] == "ptr":
                continue
            v = _zero(t)
        if omit and (v == "" or v is False) and t in ("string", "bool"):
            continue
        out[name] = v
    return out


def _zero(t: Any) -> Any:
    if t == "string":
        return ""
    if t == "bool":
        return False
    if t == "raw":
        return None
    if isinstance(t, tuple) and t and t[0] == "ptr":
        return None
    return _encode_struct(t, {})


def configuration(definition_name: str, terraform: dict[str, Any], annotations: dict[str, str],
                  component: str, properties: Any, namespace: str, where: Location,
                  locate: Callable[[str], Location] | None = None) -> dict[str, Any]:
    """The `Configuration` object KubeVela renders for one Terraform component (before the OAM
    labels and annotations every workload gets). `where` locates the component's properties,
    `locate` one property of them."""
    config_text = terraform.get("configuration")
    if not isinstance(config_text, str) or not config_text:
        raise InputError([Diagnostic(f"component definition {definition_name}: terraform configuration is not set",
                                     where)])
    params = properties if properties is not None else {}
    if not isinstance(params, dict):
        raise InputError([Diagnostic(f"{CONVERT_ERROR}: the properties of a Terraform component must be a map, "
                                     f"not {_json_kind(params)}", where)])
    try:
        spec = _decode_struct(SPEC, params, ("ConfigurationSpec",))
    except _Mismatch as exc:
        field = exc.path[1] if len(exc.path) > 1 else ""
        key = next((k for k in params if k.lower() == field.lower()), "") if field else ""
        loc = locate(key) if key and locate is not None else where
        raise InputError([Diagnostic(f"{CONVERT_ERROR}: {exc.message}", loc,
                                     f"the property {field!r} is a field of terraform-controller's "
                                     "ConfigurationSpec and must have its type" if field else "")]) from None
    try:
        defaults = _decode_struct(SPEC, {k: terraform[k] for k in
                                         ("writeConnectionSecretToRef", "providerRef", "gitCredentialsSecretReference")
                                         if k in terraform}, ("Terraform",))
    except _Mismatch as exc:
        raise InputError([Diagnostic(f"component definition {definition_name}: schematic.terraform: {exc.message}",
                                     where)]) from None
    for key in ("writeConnectionSecretToRef", "providerRef", "gitCredentialsSecretReference"):
        if key not in spec and key in defaults:
            spec[key] = defaults[key]
    conn = spec.get("writeConnectionSecretToRef")
    if isinstance(conn, dict) and not conn.get("namespace"):
        spec["writeConnectionSecretToRef"] = {**conn, "namespace": namespace}
    kind = terraform.get("type") or "hcl"
    if kind == "hcl":
        spec["hcl"] = config_text
    elif kind == "remote":
        spec["remote"] = config_text
        path = terraform.get("path")
        if isinstance(path, str) and path:
            spec["path"] = path
        else:
            spec.pop("path", None)
    spec["variable"] = {k: v for k, v in params.items() if k not in NOT_VARIABLES}
    metadata: dict[str, Any] = {"creationTimestamp": None, "name": component, "namespace": namespace}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec,
            "status": {"apply": {}, "destroy": {}}}
