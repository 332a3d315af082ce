"""The API server's object validation → (field, message) causes: schemas, metadata syntax, sizes, immutability.

* `unknown_fields`: the fields of a built-in object its schema does not declare. The schema is
  Kubernetes' published OpenAPI as the official Python client compiles it into its model classes
  (`openapi_types` / `attribute_map` of `kubernetes.client.models.V1Deployment` and so on), so no
  second copy of the schemas ships; kinds without a model there (the multicluster ones) are not checked.
* `validate`: what the per-kind `Validate*` functions of pkg/apis/core/validation and
  pkg/apis/apps/validation reject for the kinds velapy distributes: label and annotation syntax and
  lengths (apimachinery's `ValidateLabels` / `ValidateAnnotations`: qualified names, 63-character
  values, 256 KiB of annotations), the 1 MiB limit of ConfigMaps and Secrets, a workload without
  `selector`, a selector that does not match the template's labels, a container without `image`, a
  Job whose pods would restart.
* `immutable`: what the `Validate*Update` functions refuse to change: Deployment/DaemonSet/ReplicaSet
  `spec.selector`, the StatefulSet spec outside its updatable fields, Job `selector`/`template`/
  `completionMode`, a Service's cluster IP, a PVC's spec outside `resources.requests`, the data of a
  ConfigMap or Secret marked `immutable: true`, a Secret's `type`, and new finalizers on an object
  that is being deleted.
"""

from __future__ import annotations

import importlib
import json
import re
from functools import cache
from typing import Any

Cause = tuple[str, str]  # (field path, message after the path)

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_NAME_HINT = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
              "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
              "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
_VALUE_HINT = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
               "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
MAX_CONFIG_BYTES = 1024 * 1024  # core.MaxSecretSize / MaxConfigMapSize
MAX_ANNOTATION_BYTES = 256 * 1024  # apimachinery TotalAnnotationSizeLimitB


def _q(value: Any) -> str:
    return json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else json.dumps(value)


def qualified_name(key: str) -> list[str]:
    """apimachinery IsQualifiedName: `[prefix/]name`, name ≤ 63 characters, prefix a DNS subdomain."""
    parts = key.split("/")
    if len(parts) > 2:
        return ["a qualified name " + _NAME_HINT.replace("name part ", "")]
    name = parts[-1]
    out = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            out.append("prefix part must be non-empty")
        elif len(prefix) > 253 or not _SUBDOMAIN.match(prefix):
            out.append("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                       "characters, '-' or '.', and must start and end with an alphanumeric character")
    if not name:
        out.append("name part must be non-empty")
    elif len(name) > 63:
        out.append("name part must be no more than 63 characters")
    elif not _NAME.match(name):
        out.append(_NAME_HINT)
    return out


def check_labels(value: Any, where: str) -> list[Cause]:
    if not isinstance(value, dict):
        return []
    out: list[Cause] = []
    for k, v in value.items():
        out.extend((where, f"Invalid value: {_q(k)}: {m}") for m in qualified_name(str(k)))
        if not isinstance(v, str):
            out.append((where, "Invalid value: values must be strings"))
        elif len(v) > 63:
            out.append((where, f"Invalid value: {_q(v)}: must be no more than 63 characters"))
        elif v and not _NAME.match(v):
            out.append((where, f"Invalid value: {_q(v)}: {_VALUE_HINT}"))
    return out


def check_annotations(value: Any, where: str) -> list[Cause]:
    if not isinstance(value, dict):
        return []
    out: list[Cause] = []
    size = 0
    for k, v in value.items():
        out.extend((where, f"Invalid value: {_q(k)}: {m}") for m in qualified_name(str(k).lower()))
        if not isinstance(v, str):
            out.append((where, "Invalid value: values must be strings"))
        size += len(str(k)) + len(str(v))
    if size > MAX_ANNOTATION_BYTES:
        out.append((where, f"Too long: must have at most {MAX_ANNOTATION_BYTES} bytes"))
    return out


def _get(obj: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def _selector_matches(selector: Any, template_labels: Any) -> bool:
    if not isinstance(selector, dict):
        return True
    have = template_labels if isinstance(template_labels, dict) else {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if have.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e.get("key"), e.get("operator"), e.get("values") or []
        if (op == "In" and have.get(key) not in values) or (op == "NotIn" and have.get(key) in values) \
                or (op == "Exists" and key not in have) or (op == "DoesNotExist" and key in have):
            return False
    return True


def validate(group: str, kind: str, obj: dict[str, Any]) -> list[Cause]:
    """The causes a create or update of a built-in object is refused with (422), after defaulting."""
    meta = obj.get("metadata") or {}
    out = check_labels(meta.get("labels"), "metadata.labels") + \
        check_annotations(meta.get("annotations"), "metadata.annotations")
    if kind in ("ConfigMap", "Secret") and group == "":
        size = 0
        for section in ("data", "binaryData"):
            for k, v in (obj.get(section) or {}).items():
                if len(k) > 253 or not _CONFIG_KEY.match(k):
                    out.append((f"{section}[{k}]", f"Invalid value: {_q(k)}: a valid config key must consist of "
                                "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
                size += len(k) + (len(v) * 3 // 4 if kind == "Secret" or section == "binaryData" else
                                  len(str(v).encode()))
        if size > MAX_CONFIG_BYTES:
            out.append(("data" if kind == "ConfigMap" else "data", f"Too long: must have at most {MAX_CONFIG_BYTES} "
                        "bytes"))
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    if group in ("apps", "batch") and kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job") \
            and spec is not None:
        template = spec.get("template")
        tmeta = _get(template, "metadata") or {}
        out += check_labels(tmeta.get("labels"), "spec.template.metadata.labels")
        selector = spec.get("selector")
        if kind != "Job" and selector is None:
            out.append(("spec.selector", "Required value"))
            # a missing selector selects nothing (LabelSelectorAsSelector(nil)), so the template check fails too
            out.append(("spec.template.metadata.labels", f"Invalid value: {_q(tmeta.get('labels') or {})}: "
                        "`selector` does not match template `labels`"))
        elif kind != "Job" and not (selector.get("matchLabels") or selector.get("matchExpressions")):
            out.append(("spec.selector", f"Invalid value: {_q(selector)}: empty selector is invalid for "
                        "deployment" if kind == "Deployment" else f"Invalid value: {_q(selector)}: empty selector is "
                        "not valid"))
        elif not _selector_matches(selector, tmeta.get("labels")):
            out.append(("spec.template.metadata.labels", f"Invalid value: {_q(tmeta.get('labels') or {})}: "
                        "`selector` does not match template `labels`"))
        pod = _get(template, "spec")
        if not isinstance(pod, dict):
            out.append(("spec.template.spec.containers", "Required value"))
        else:
            containers = pod.get("containers") or []
            if not containers:
                out.append(("spec.template.spec.containers", "Required value"))
            for i, c in enumerate(containers):
                if isinstance(c, dict) and not c.get("name"):
                    out.append((f"spec.template.spec.containers[{i}].name", "Required value"))
                if isinstance(c, dict) and not c.get("image"):
                    out.append((f"spec.template.spec.containers[{i}].image", "Required value"))
            if kind == "Job" and pod.get("restartPolicy") not in ("OnFailure", "Never"):
                out.append(("spec.template.spec.restartPolicy", f"Unsupported value: {_q(pod.get('restartPolicy'))}: "
                            'supported values: "OnFailure", "Never"'))
            elif kind != "Job" and pod.get("restartPolicy") != "Always":
                out.append(("spec.template.spec.restartPolicy", f"Unsupported value: {_q(pod.get('restartPolicy'))}: "
                            'supported values: "Always"'))
    return out


# --------------------------------------------------------------------------------------------------
# immutability

_STS_UPDATABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                  "minReadySeconds")


def immutable(group: str, kind: str, old: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    """The causes an update is refused with (422) because it changes what may not change."""
    out: list[Cause] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if group == "apps" and kind in ("Deployment", "DaemonSet", "ReplicaSet"):
        if old_spec.get("selector") != new_spec.get("selector"):
            out.append(("spec.selector", f"Invalid value: {_q(new_spec.get('selector'))}: field is immutable"))
    elif group == "apps" and kind == "StatefulSet":
        if {k: v for k, v in old_spec.items() if k not in _STS_UPDATABLE} != \
                {k: v for k, v in new_spec.items() if k not in _STS_UPDATABLE}:
            out.append(("spec", "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                        "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                        "'minReadySeconds' are forbidden"))
    elif group == "batch" and kind == "Job":
        for key in ("selector", "template", "completionMode"):
            if old_spec.get(key) != new_spec.get(key):
                out.append((f"spec.{key}", f"Invalid value: {_q(new_spec.get(key))}: field is immutable"))
    elif group == "" and kind == "Service":
        was, now = old_spec.get("clusterIP"), new_spec.get("clusterIP")
        if was and now and was != now and "ExternalName" not in (old_spec.get("type"), new_spec.get("type")):
            out.append(("spec.clusterIPs[0]", f"Invalid value: {_q([now])}: may not change once set"))
    elif group == "" and kind == "PersistentVolumeClaim":
        def rest(spec: dict[str, Any]) -> dict[str, Any]:
            out = {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName")}
            out["limits"] = (spec.get("resources") or {}).get("limits")
            return out

        if rest(old_spec) != rest(new_spec):
            out.append(("spec", "Forbidden: spec is immutable after creation except resources.requests and "
                        "volumeAttributesClassName for bound claims"))
    elif group == "" and kind in ("ConfigMap", "Secret") and old.get("immutable") is True:
        if new.get("immutable") is not True:
            out.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
        for section in ("data", "binaryData"):
            if (old.get(section) or {}) != (new.get(section) or {}):
                out.append((section, "Forbidden: field is immutable when `immutable` is set"))
    if group == "" and kind == "Secret" and old.get("type") != new.get("type"):
        out.append(("type", f"Invalid value: {_q(new.get('type'))}: field is immutable"))
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old_meta.get("deletionTimestamp"):
        added = [f for f in new_meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
        if added:
            out.append(("metadata.finalizers", "Forbidden: no new finalizers can be added if the object is being "
                        "deleted, found new finalizers []string{" + ", ".join(json.dumps(f) for f in added) + "}"))
    return out


# --------------------------------------------------------------------------------------------------
# schemas (the official client's models)

@cache
def _model(api_version: str, kind: str) -> Any:
    models = importlib.import_module("kubernetes.client.models")
    version = api_version.rpartition("/")[2]
    prefix = version[:1].upper() + version[1:]
    for name in (f"{prefix}{kind}", f"Core{prefix}{kind}"):
        model = getattr(models, name, None)
        if model is not None and hasattr(model, "openapi_types"):
            return model
    return None


def _model_of(type_name: str) -> Any:
    models = importlib.import_module("kubernetes.client.models")
    return getattr(models, type_name, None)


def _walk(value: Any, type_name: str, path: str, out: list[str], prune: bool) -> None:
    if type_name.startswith("List[") and isinstance(value, list):
        inner = type_name[5:-1]
        for i, item in enumerate(value):
            _walk(item, inner, f"{path}[{i}]", out, prune)
        return
    if type_name.startswith("Dict[") and isinstance(value, dict):
        inner = type_name[5:-1].split(",", 1)[1].strip()
        for k, item in value.items():
            _walk(item, inner, f"{path}[{k}]", out, prune)
        return
    model = _model_of(type_name) if type_name[:1] == "V" or type_name.startswith(("Core", "Events", "Admission",
                                                                                   "Storage", "Rbac", "Flowcontrol",
                                                                                   "Discovery", "Apiextensions")) \
        else None
    if model is None or not isinstance(value, dict) or not hasattr(model, "attribute_map"):
        return
    if type_name == "V1JSONSchemaProps":
        return  # a CRD's schema: its own rules (x-kubernetes-*, $ref...) are not a typed struct here
    declared = {j: model.openapi_types[a] for a, j in model.attribute_map.items()}
    for k in list(value):
        sub = f"{path}.{k}" if path else str(k)
        if k not in declared:
            out.append(sub)
            if prune:
                del value[k]
            continue
        _walk(value[k], declared[k], sub, out, prune)


def unknown_fields(api_version: str, kind: str, obj: dict[str, Any], prune: bool = False) -> list[str] | None:
    """The dotted paths of fields the kind's schema does not declare (removed from `obj` when `prune`);
    None when the kind has no published schema here."""
    model = _model(api_version, kind)
    if model is None:
        return None
    out: list[str] = []
    _walk(obj, model.__name__, "", out, prune)
    return out


# --------------------------------------------------------------------------------------------------
# custom resources: the CRD's structural schema (apiextensions-apiserver's pruning and validation)

_JSON_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _JSON_TYPES.get(kind)
    return expected is None or (isinstance(value, expected) and (kind == "boolean" or not isinstance(value, bool)))


def prune(value: Any, schema: dict[str, Any], path: str, out: list[str]) -> None:
    """Remove (in place) the fields the structural schema does not declare; their paths into `out`."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        keep = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or extra is True
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        for k in list(value):
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(props, dict) and k in props:
                prune(value[k], props[k], sub, out)
            elif isinstance(extra, dict):
                prune(value[k], extra, sub, out)
            elif not keep and not (embedded and k in ("apiVersion", "kind", "metadata")):
                out.append(sub)
                del value[k]
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            prune(item, schema["items"], f"{path}[{i}]", out)


def check_schema(value: Any, schema: dict[str, Any], path: str, out: list[Cause]) -> None:
    """The violations of `value` against an OpenAPI v3 schema: type, required, enum, bounds, lengths."""
    if not isinstance(schema, dict) or value is None:
        return
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string") and isinstance(value, int | str) and not isinstance(value, bool):
        return
    if isinstance(kind, str) and not _type_ok(value, kind):
        out.append((path, f"Invalid value: {_q(_json_type(value))}: {path} in body must be of type {kind}: "
                    f"{_q(_json_type(value))}"))
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append((path, f"Unsupported value: {_q(value)}: supported values: "
                    + ", ".join(_q(v) for v in schema["enum"])))
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append((path, f"Invalid value: {value}: {path} in body should be greater than or equal to "
                        f"{schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append((path, f"Invalid value: {value}: {path} in body should be less than or equal to "
                        f"{schema['maximum']}"))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append((path, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "pattern" in schema and not re.search(str(schema["pattern"]), value):
            out.append((path, f"Invalid value: {_q(value)}: {path} in body should match '{schema['pattern']}'"))
    if isinstance(value, dict):
        for name in schema.get("required") or []:
            if name not in value:
                out.append((f"{path}.{name}" if path else str(name), "Required value"))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if k in props:
                check_schema(v, props[k], sub, out)
            elif isinstance(extra, dict):
                check_schema(v, extra, sub, out)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            check_schema(item, schema["items"], f"{path}[{i}]", out)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"
