"""Validation before CUE: every problem collected, located, with expected/found and did-you-mean."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from velapy.cue.engine import Evaluator
from velapy.errors import Diagnostic, InputError
from velapy.load.definitions import Registry, load_registry
from velapy.load.yamlio import load_documents
from velapy.pipeline import Inputs, validate
from velapy.validate.documents import Options, document_schema, validate_documents, validate_files

HEAD = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
spec:
"""


def check(registry: Registry, body: str, *extra: str, allow_unknown: bool = False) -> list[Diagnostic]:
    app = load_documents(HEAD + textwrap.indent(textwrap.dedent(body), "  "), "app.yaml")
    docs = [d for i, text in enumerate(extra) for d in load_documents(textwrap.dedent(text), f"extra{i}.yaml")]
    return validate_documents("app.yaml", app, docs, registry, None, Options(allow_unknown))


def by_path(diags: list[Diagnostic]) -> dict[str, Diagnostic]:
    return {d.location.path: d for d in diags}


def test_document_schemas_are_valid_draft_2020_12() -> None:
    for name in ("application", "policy", "workflow"):
        schema = document_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_step_schema_is_the_same_in_application_and_workflow() -> None:
    app, wf = document_schema("application"), document_schema("workflow")
    for name in ("step", "subStep", "mode", "metadata"):
        assert json.dumps(app["$defs"][name], sort_keys=True) == json.dumps(wf["$defs"][name], sort_keys=True)


def test_a_valid_application_has_no_problems(registry: Registry) -> None:
    assert check(registry, """\
      components:
        - name: web
          type: webservice
          properties:
            image: nginx
            ports: [{port: 80, expose: true}]
          traits:
            - type: scaler
              properties: {replicas: 2}
            - type: command
              properties: {containers: [{containerName: web, command: [nginx]}]}
      policies:
        - name: where
          type: topology
          properties: {clusters: [local]}
      workflow:
        steps:
          - {name: ship, type: deploy, properties: {policies: [where]}}
    """) == []


def test_wrong_type_is_located_with_expected_and_found(registry: Registry) -> None:
    (d,) = check(registry, """\
      components:
        - name: web
          type: webservice
          properties:
            image: nginx
            ports:
              - port: "80"
    """)
    assert d.location.path == "spec.components[0].properties.ports[0].port"
    assert (d.location.file, d.location.line, d.location.column) == ("app.yaml", 12, 19)  # where "80" is
    assert d.message == 'expected an integer, found a string "80"'
    assert d.location.component == "web"


def test_unknown_parameter_is_an_error_with_a_suggestion_unless_allowed(registry: Registry) -> None:
    body = """\
      components:
        - name: web
          type: webservice
          properties:
            image: nginx
            imagePullPolcy: Always
    """
    (d,) = check(registry, body)
    assert d.message == 'unknown parameter "imagePullPolcy" of component type webservice'
    assert d.hint.startswith('did you mean "imagePullPolicy"?') and "--allow-unknown-parameters" in d.hint
    assert check(registry, body, allow_unknown=True) == []


def test_unknown_types_suggest_the_closest_name(registry: Registry) -> None:
    diags = by_path(check(registry, """\
      components:
        - name: web
          type: webservise
          traits:
            - type: scalr
      policies:
        - name: p
          type: topolgy
          properties: {}
      workflow:
        steps:
          - {name: wait, type: suspnd}
    """))
    assert diags["spec.components[0].type"].hint == 'did you mean "webservice"?'
    assert diags["spec.components[0].traits[0].type"].hint == 'did you mean "scaler"?'
    assert diags["spec.policies[0].type"].message == 'unknown policy type "topolgy"'
    assert diags["spec.workflow.steps[0].type"].message == 'unknown workflow step type "suspnd"'


def test_all_problems_are_collected_in_file_order(registry: Registry) -> None:
    diags = check(registry, """\
      components:
        - name: web
          type: webservice
        - name: web
          type: worker
          properties: {image: x, cmd: ls}
          dependsOn: [db]
      workflow:
        ref: release
        steps: []
    """)
    lines = [d.location.line for d in diags]
    assert lines == sorted(lines) and len(diags) == 5
    messages = [d.message for d in diags]
    assert messages[0] == 'missing required parameter "image" (string)'
    assert 'duplicated component name "web" (first at line 7)' in messages
    assert "component db not found, which is depended by web" in messages
    assert "cannot set steps and ref in workflow at the same time" in messages


def test_alternative_parameter_sets(registry: Registry) -> None:
    diags = check(registry, """\
      components:
        - name: web
          type: webservice
          properties: {image: x}
          traits:
            - type: command
              properties: {command: ls}
            - type: resource
              properties: {cpu: true}
    """)
    assert [d.message for d in diags] == ['expected a list or null, found a string "ls"',
                                          "expected a number or a string, found a boolean true"]


def test_workflow_references(registry: Registry) -> None:
    policy = """\
      apiVersion: core.oam.dev/v1alpha1
      kind: Policy
      metadata: {name: external}
      type: topology
      properties: {clusters: [local]}
    """
    diags = by_path(check(registry, """\
      components:
        - {name: web, type: webservice, properties: {image: x}}
      policies:
        - {name: prod, type: topology, properties: {clusters: [local]}}
      workflow:
        steps:
          - {name: ship, type: deploy, properties: {policies: [prod, external, prd]}}
          - name: group
            type: step-group
            subSteps:
              - {name: ship, type: suspend}
              - {type: apply-component, properties: {component: wbe}, dependsOn: [shipp]}
    """, policy))
    assert set(diags) == {"spec.workflow.steps[0].properties.policies[2]", "spec.workflow.steps[1].subSteps[0].name",
                          "spec.workflow.steps[1].subSteps[1].properties.component",
                          "spec.workflow.steps[1].subSteps[1].dependsOn[0]"}
    assert diags["spec.workflow.steps[0].properties.policies[2]"].message == "policy prd not found"
    assert diags["spec.workflow.steps[0].properties.policies[2]"].hint == 'did you mean "prod"?'
    assert diags["spec.workflow.steps[1].subSteps[1].properties.component"].hint == 'did you mean "web"?'


def test_override_policies_name_known_types(registry: Registry) -> None:
    diags = by_path(check(registry, """\
      components:
        - {name: web, type: webservice, properties: {image: x}}
      policies:
        - name: bigger
          type: override
          properties:
            components:
              - name: web
                type: web-service
                traits: [{type: scaler}, {type: autoscaler}]
            selector: [wbe]
    """))
    base = "spec.policies[0].properties."
    assert diags[base + "components[0].type"].hint == 'did you mean "webservice"?'
    assert diags[base + "components[0].traits[1].type"].message == \
        'override policy bigger: unknown trait type "autoscaler"'
    assert diags[base + "selector[0]"].hint == 'did you mean "web"?'


def test_standalone_documents_are_checked(registry: Registry) -> None:
    diags = check(registry, """\
      components:
        - {name: web, type: webservice, properties: {image: x}}
      workflow: {ref: release}
    """, """\
      apiVersion: core.oam.dev/v1alpha1
      kind: Workflow
      metadata: {name: release}
      steps:
        - {name: ship, type: deploy, properties: {policies: [nowhere]}}
    """, """\
      apiVersion: core.oam.dev/v1alpha1
      kind: Policy
      metadata: {name: p}
      type: topology
      properties: {cluster: [a]}
    """)
    assert [(d.location.file, d.location.path, d.message) for d in diags] == [
        ("extra0.yaml", "steps[0].properties.policies[0]", "policy nowhere not found"),
        ("extra1.yaml", "properties.cluster", 'unknown parameter "cluster" of policy type topology'),
    ]


def test_application_fields(registry: Registry) -> None:
    diags = by_path(check(registry, """\
      componets: []
    """))
    assert diags["spec.componets"].hint == 'did you mean "components"?'
    assert diags["spec"].message == 'missing required field "components"'


def test_properties_of_user_definitions_use_engine_schemas(tmp_path: Path, evaluator: Evaluator) -> None:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "greeter.cue").write_text(textwrap.dedent("""\
        greeter: {
            type: "component"
            attributes: workload: definition: {apiVersion: "v1", kind: "ConfigMap"}
        }
        template: {
            output: {apiVersion: "v1", kind: "ConfigMap", data: greeting: parameter.greeting}
            parameter: greeting: string
        }
    """))
    (tmp_path / "app.yaml").write_text(HEAD + "  components:\n"
                                       "    - {name: g, type: greeter, properties: {greting: hi}}\n")
    registry = load_registry([str(tmp_path / "defs")])
    with pytest.raises(InputError) as info:
        validate_files(str(tmp_path / "app.yaml"), [], registry, evaluator)
    messages = {d.message for d in info.value.diagnostics}
    assert messages == {'missing required parameter "greeting" (string)',
                        'unknown parameter "greting" of component type greeter'}
    # without an engine, the properties of -d definitions are left to CUE at render time
    assert validate_files(str(tmp_path / "app.yaml"), [], registry, None).components == 0


def test_validate_from_the_pipeline(tmp_path: Path, evaluator: Evaluator) -> None:
    (tmp_path / "app.yaml").write_text(HEAD + textwrap.indent(textwrap.dedent("""\
      components:
        - name: web
          type: webservice
          properties: {image: x}
          traits: [{type: scaler, properties: {replicas: 2}}]
    """), "  "))
    summary = validate(Inputs(str(tmp_path / "app.yaml")), evaluator)
    assert summary.text() == "1 component, 1 trait, 0 policies, 0 workflow steps"


def test_malformed_yaml_stops_with_its_location(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(HEAD + "  components:\n    - name: web\n   type: x\n")
    with pytest.raises(InputError) as info:
        validate_files(str(tmp_path / "app.yaml"), [], load_registry())
    (d,) = info.value.diagnostics
    assert d.location.line == 8 and d.message.startswith("invalid YAML")


# --------------------------------------------------------------------------------------------
# the command line


class _Shared:
    """The session's evaluator, lent to the CLI (which would otherwise start its own engine)."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def __enter__(self) -> Evaluator:
        return self.evaluator

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture()
def cli(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    import velapy.cli
    monkeypatch.setattr(velapy.cli.base, "open_evaluator", lambda: _Shared(evaluator))
    return CliRunner()


def test_cli_validate(cli: CliRunner, tmp_path: Path) -> None:
    from velapy.cli import main
    (tmp_path / "app.yaml").write_text(HEAD + "  components:\n    - {name: web, type: webservice, "
                                              "properties: {image: x, replica: 2}}\n")
    bad = cli.invoke(main, ["validate", str(tmp_path / "app.yaml")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert 'unknown parameter "replica" of component type webservice' in bad.output
    good = cli.invoke(main, ["validate", str(tmp_path / "app.yaml"), "--allow-unknown-parameters"])
    assert good.exit_code == 0, good.output
    assert good.output.endswith("is valid (1 component, 0 traits, 0 policies, 0 workflow steps checked)\n")


def test_cli_def_list_and_show(cli: CliRunner) -> None:
    from velapy.cli import main
    listed = cli.invoke(main, ["def", "list", "--kind", "trait"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["NAME", "KIND", "DESCRIPTION"]
    assert any(line.split()[:2] == ["scaler", "trait"] for line in lines)
    assert not any(line.split()[1:2] == ["component"] for line in lines[1:] if line.strip())
    shown = cli.invoke(main, ["def", "show", "scaler"])
    assert shown.exit_code == 0
    assert shown.output.splitlines()[3].split() == ["PARAMETER", "TYPE", "DEFAULT", "REQUIRED", "DESCRIPTION"]
    assert shown.output.splitlines()[4].split()[:3] == ["replicas", "integer", "1"]
    missing = cli.invoke(main, ["def", "show", "scalr"])
    assert missing.exit_code == 2 and 'did you mean "scaler"?' in missing.output


def test_cli_def_vet_and_render(cli: CliRunner, tmp_path: Path) -> None:
    from velapy.cli import main
    good = Path(__file__).resolve().parent.parent / "definitions" / "trait" / "scaler.cue"
    bad = tmp_path / "bad.cue"
    bad.write_text('bad: {\n    type: "trait"\n}\ntemplate: {\n    parameter: {replicas: int int}\n}\n')
    vetted = cli.invoke(main, ["def", "vet", str(good), str(bad)])
    assert vetted.exit_code == 2
    assert f"Validation {good} succeed." in vetted.output
    assert f"{bad}:5:31: definition bad (trait): " in vetted.output
    rendered = cli.invoke(main, ["def", "render", str(good)])
    assert rendered.exit_code == 0
    assert rendered.output.startswith("# Source: scaler.cue\napiVersion: core.oam.dev/v1beta1\nkind: TraitDefinition\n")
    # valid YAML: the file name is a comment (issue 22 item 12)
    assert yaml.safe_load(rendered.output)["kind"] == "TraitDefinition"
    assert "      template: |\n        parameter: {\n" in rendered.output


def test_a_list_parameter_with_required_elements(cli: CliRunner, tmp_path: Path, evaluator: Evaluator) -> None:
    """`[string, ...string]` used to stop `def vet` (exit 4); now it vets, and an app giving `[]` or
    `[1]` gets a located error."""
    from velapy.cli import main
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "hosts.cue").write_text(textwrap.dedent("""\
        hosts: {
            type: "trait"
            attributes: appliesToWorkloads: ["*"]
        }
        template: {
            parameter: names: [string, ...string]
        }
    """))
    vetted = cli.invoke(main, ["def", "vet", str(tmp_path / "defs" / "hosts.cue")])
    assert vetted.exit_code == 0, vetted.output
    (tmp_path / "app.yaml").write_text(HEAD + textwrap.indent(textwrap.dedent("""\
      components:
        - name: web
          type: webservice
          properties: {image: x}
          traits:
            - {type: hosts, properties: {names: []}}
            - {type: hosts, properties: {names: [1]}}
            - {type: hosts, properties: {names: [a]}}
    """), "  "))
    registry = load_registry([str(tmp_path / "defs")])
    with pytest.raises(InputError) as info:
        validate_files(str(tmp_path / "app.yaml"), [], registry, evaluator)
    found = {(d.location.line, d.location.path): d.message for d in info.value.diagnostics}
    assert set(found) == {(11, "spec.components[0].traits[0].properties.names"),
                          (12, "spec.components[0].traits[1].properties.names[0]")}
    assert found[(11, "spec.components[0].traits[0].properties.names")] == "expected at least 1 item, found 0"
    assert found[(12, "spec.components[0].traits[1].properties.names[0]")] == "expected a string, found an integer 1"
