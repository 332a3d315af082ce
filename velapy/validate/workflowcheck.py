"""The workflow of an Application (its steps, or a `-f` Workflow's) → problems in a Collector.

`all_steps` lists the steps and sub-steps with where they are; `check_workflow` checks `ref`
against `steps` and the Workflow documents, unique step names, step types and properties,
`dependsOn`, the policies a deploy step names and the component an apply-component step names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from velapy.errors import REASON_NEEDS_INPUT
from velapy.load.yamlio import Document
from velapy.validate.collector import Collector, list_of, mapping_of, text_of
from velapy.validate.explain import JsonPath, did_you_mean

DEPLOY = "deploy"
APPLY_COMPONENT = "apply-component"


@dataclass
class StepRef:
    """A step or sub-step: its name (or the generated one), type, document, path and mapping."""

    name: str
    type: str
    doc: Document
    path: JsonPath
    raw: dict[str, Any]


def workflow_source(app: Document, workflows: Sequence[Document]) -> tuple[Document, JsonPath, Any] | None:
    """The app's steps: (the document holding them, their path there, the raw list), or None when
    the app has no steps or its `ref` names no Workflow given."""
    wf = mapping_of(mapping_of(mapping_of(app.data).get("spec")).get("workflow"))
    ref = wf.get("ref")
    if isinstance(ref, str) and ref and wf.get("steps") is None:
        for d in workflows:
            if mapping_of(mapping_of(d.data).get("metadata")).get("name") == ref:
                return d, ("steps",), mapping_of(d.data).get("steps")
        return None
    if wf.get("steps") is not None:
        return app, ("spec", "workflow", "steps"), wf.get("steps")
    return None


def all_steps(app: Document, workflows: Sequence[Document]) -> list[StepRef]:
    """Every step and sub-step of the app's workflow, in order (each step before its sub-steps)."""
    src = workflow_source(app, workflows)
    if src is None:
        return []
    doc, base, steps = src
    out: list[StepRef] = []
    for i, s in enumerate(list_of(steps)):
        if not isinstance(s, dict):
            continue
        out.append(StepRef(text_of(s.get("name")) or f"step-{i}", text_of(s.get("type")), doc, (*base, i), s))
        for j, sub in enumerate(list_of(s.get("subSteps"))):
            if isinstance(sub, dict):
                out.append(StepRef(text_of(sub.get("name")) or f"step-{i}-{j}", text_of(sub.get("type")), doc,
                                   (*base, i, "subSteps", j), sub))
    return out


def check_workflow(c: Collector, app: Document, spec: dict[str, Any], workflows: Sequence[Document],
                   components: list[str], policies: dict[str, None]) -> None:
    """The workflow's problems → `c`: `ref` and `steps`, unique step names, step types and
    properties, `dependsOn`, the policies of deploy steps, the component of apply-component steps."""
    wf = spec.get("workflow")
    if not isinstance(wf, dict):
        return
    ref = wf.get("ref")
    if ref and wf.get("steps") is not None:
        c.add(app, ("spec", "workflow", "ref"), "cannot set steps and ref in workflow at the same time",
              "keep either `ref` (steps of a Workflow document) or `steps`")
        return
    if isinstance(ref, str) and ref:
        names = [text_of(mapping_of(mapping_of(d.data).get("metadata")).get("name")) for d in workflows]
        if ref not in names:
            hint = did_you_mean(ref, names) or "pass the Workflow document with -f FILE"
            c.add(app, ("spec", "workflow", "ref"), f"workflow {ref} not found", hint,
                  reason=REASON_NEEDS_INPUT)
            return
    steps = all_steps(app, workflows)
    seen: dict[str, StepRef] = {}
    for s in steps:
        if s.name in seen:
            first = seen[s.name].doc.location(list(seen[s.name].path))
            c.add(s.doc, (*s.path, "name") if s.raw.get("name") else s.path,
                  f'duplicated step name "{s.name}" (first at line {first.line})',
                  "step names must be unique across the whole workflow, sub-steps included")
        else:
            seen[s.name] = s
    step_names = list(seen)
    for s in steps:
        if not s.type:
            continue
        if not c.known_type(s.doc, (*s.path, "type"), "workflow-step", s.type):
            continue
        c.check_properties(s.doc, s.path, "workflow-step", s.type, s.raw)
        for k, dep in enumerate(list_of(s.raw.get("dependsOn"))):
            if isinstance(dep, str) and dep not in seen:
                c.add(s.doc, (*s.path, "dependsOn", k), f"step {dep} not found, which step {s.name} depends on",
                      did_you_mean(dep, step_names))
        props = mapping_of(s.raw.get("properties"))
        if s.type == DEPLOY:
            for k, pname in enumerate(list_of(props.get("policies"))):
                if isinstance(pname, str) and pname not in policies:
                    hint = did_you_mean(pname, list(policies)) or \
                        "name a policy of spec.policies, or pass a Policy document with -f FILE"
                    c.add(s.doc, (*s.path, "properties", "policies", k), f"policy {pname} not found", hint)
        elif s.type == APPLY_COMPONENT:
            comp = props.get("component")
            if isinstance(comp, str) and comp and comp not in components:
                c.add(s.doc, (*s.path, "properties", "component"), f"component {comp} not found",
                      did_you_mean(comp, components))
