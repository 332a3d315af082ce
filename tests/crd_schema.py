"""A CustomResourceDefinition's OpenAPI v3 schema → a strict JSON Schema (draft 2020-12), for tests.

Conversion, as the API server reads a structural schema:

* `nullable: true` adds "null" to the type; `x-kubernetes-int-or-string: true` is integer or string;
* an object that declares `properties` accepts no other field (`additionalProperties: false`), unless
  it has `x-kubernetes-preserve-unknown-fields: true`; so a misspelt field fails, as it would be
  pruned (or rejected with `kubectl --validate=strict`) by the API server;
* `anyOf` / `allOf` / `oneOf` / `not` are converted branch by branch; descriptions, defaults, CEL
  rules (`x-kubernetes-validations`) and list/map-type markers are left out (not checked here);
* the top-level `metadata` (declared as a bare object by CRDs, validated as ObjectMeta by the API
  server) is checked against the ObjectMeta fields a manifest may carry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

_KEEP = ("enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
         "maxLength", "minItems", "maxItems", "minProperties", "maxProperties", "uniqueItems", "required")

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_QUALIFIED_KEY = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "propertyNames": {"pattern": _QUALIFIED_KEY},
                   "additionalProperties": {"type": "string", "maxLength": 63, "pattern": _LABEL_VALUE}},
        "annotations": {"type": "object", "propertyNames": {"pattern": _QUALIFIED_KEY},
                        "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array"},
    },
}


def convert(schema: dict[str, Any]) -> dict[str, Any]:
    """One OpenAPI v3 (structural) schema node → JSON Schema."""
    out: dict[str, Any] = {k: schema[k] for k in _KEEP if k in schema}
    if schema.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif "type" in schema:
        out["type"] = [schema["type"], "null"] if schema.get("nullable") else schema["type"]
    if "properties" in schema:
        out["properties"] = {k: convert(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = convert(schema["additionalProperties"])
    elif schema.get("additionalProperties") is False or (
            schema.get("type") == "object" and "properties" in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    if "items" in schema:
        out["items"] = convert(schema["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema and not schema.get("x-kubernetes-int-or-string"):
            out[key] = [convert(b) for b in schema[key]]
    if "not" in schema:
        out["not"] = convert(schema["not"])
    return out


def load_crd(path: Path) -> dict[str, Any]:
    crd = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert crd.get("kind") == "CustomResourceDefinition", f"{path} is not a CRD"
    return dict(crd)


def validators(crd: dict[str, Any]) -> dict[str, jsonschema.Draft202012Validator]:
    """apiVersion (group/version of every served version) → a validator of whole objects."""
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    out: dict[str, jsonschema.Draft202012Validator] = {}
    for version in crd["spec"]["versions"]:
        if not version.get("served"):
            continue
        schema = convert(version["schema"]["openAPIV3Schema"])
        schema.setdefault("properties", {})["metadata"] = OBJECT_META
        schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
        schema["properties"]["kind"] = {"const": kind}
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata"})
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)
        out[f"{group}/{version['name']}"] = jsonschema.Draft202012Validator(schema)
    return out


def problems(validator: jsonschema.Draft202012Validator, obj: Any) -> list[str]:
    """Every violation as `path: message`."""
    return sorted(f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                  for e in validator.iter_errors(obj))
