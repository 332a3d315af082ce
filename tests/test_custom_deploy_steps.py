"""Custom workflow steps that deploy the app's components (op.#Deploy, op.#ApplyComponent, ...):
placed as the built-in deploy step when they are op.#Deploy with the step's own policies, else
refused with a located error naming the step, never an empty plan in silence."""

from __future__ import annotations

from pathlib import Path

import pytest

from velapy.compile.plan import Plan
from velapy.cue.engine import Evaluator
from velapy.errors import REASON_CONTROLLER_STEP, InputError
from velapy.pipeline import Inputs, compile_app

CLUSTERS = """clusters:
  - name: east
    labels: {env: prod}
    version: "1.28"
  - name: west
    labels: {env: prod}
    version: "1.28"
"""

APP = """apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  namespace: shop
spec:
  components:
    - name: api
      type: k8s-objects
      properties:
        objects:
          - apiVersion: v1
            kind: ConfigMap
            metadata: {name: api}
  policies:
    - name: prod
      type: topology
      properties:
        clusterLabelSelector: {env: prod}
  workflow:
    steps:
      - name: ship
        type: STEP
        properties:
          policies: ["prod"]
"""


def _step(body: str, name: str = "custom") -> str:
    return f'''import (
	"vela/op"
)

"{name}": {{
	type: "workflow-step"
	description: "a custom step"
}}
template: {{
{body}
}}
'''


def _compile(tmp_path: Path, evaluator: Evaluator, body: str) -> Plan:
    defs = tmp_path / "defs"
    defs.mkdir(exist_ok=True)
    (defs / "custom.cue").write_text(_step(body))
    (tmp_path / "app.yaml").write_text(APP.replace("STEP", "custom"))
    (tmp_path / "clusters.yaml").write_text(CLUSTERS)
    return compile_app(Inputs(str(tmp_path / "app.yaml"), (), (str(defs),), clusters=str(tmp_path / "clusters.yaml")),
                       evaluator)


def test_op_deploy_with_the_steps_policies_is_placed_like_deploy(tmp_path: Path, evaluator: Evaluator) -> None:
    plan = _compile(tmp_path, evaluator, '''
	// a comment naming op.#ApplyComponent does not count
	deploy: op.#Deploy & {
		policies:    parameter.policies
		parallelism: 5
	}
	parameter: policies: [...string]
''')
    bundles = plan.bundles()
    assert sorted(bundles) == ["east", "west"] and all(len(objs) == 1 for objs in bundles.values())
    assert any("planned as a deploy step" in w.message for w in plan.warnings)


@pytest.mark.parametrize(("body", "why"), [
    ('''	deploy: op.#Deploy & {
		policies: []
		inlinePolicies: [{type: "override", name: "x", properties: components: [{traits: []}]}]
	}
	parameter: {}''', "inline policies"),
    ('''	apply: op.#ApplyComponent & {value: {}}
	parameter: policies: [...string]''', "cannot tell where"),
    ('''	deploy: op.#Deploy & {policies: ["prod"]}
	parameter: {}''', "does not take its policies"),
])
def test_other_component_deploying_steps_are_refused_located(tmp_path: Path, evaluator: Evaluator, body: str,
                                                             why: str) -> None:
    with pytest.raises(InputError) as err:
        _compile(tmp_path, evaluator, body)
    text = err.value.render()
    assert "workflow step ship (type custom) deploys the application's components" in text and why in text
    assert "app.yaml:23:15: spec.workflow.steps[0].type" in text
    # a tool sorting problems (tests/compat_corpus.py) counts it as needing the controller
    assert [d.reason for d in err.value.diagnostics] == [REASON_CONTROLLER_STEP]
