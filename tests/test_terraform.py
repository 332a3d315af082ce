"""Terraform components: rendered into the Configuration KubeVela renders (appfile.go,
generateTerraformConfigurationWorkload), their HCL variables as parameters, `def vet` of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from velapy import deflib
from velapy.compile.terraform import configuration
from velapy.cue.engine import Evaluator
from velapy.errors import InputError, Location
from velapy.load import hcl
from velapy.pipeline import Inputs, dry_run

ROOT = Path(__file__).resolve().parent.parent
CATALOG_DEFS = ROOT / "golden" / "comp-terraform" / "definitions"  # copied from kubevela/catalog

HCL = '''# a module
resource "x" "y" {
  name = "${var.bucket}-{literal}"   # braces in a string
}
variable "bucket" {
  description = "Bucket name"
  type = string
}
variable "tags" {
  type    = map(string)
  default = { team = "a", "env" = "dev" }
  validation {
    condition = length(var.tags) > 0
    error_message = "need } tags"
  }
}
/* variable "commented" { } */
variable "size" {
  default = 3 // a number
}
variable "policy" {
  default = <<EOF
{ "a": "}" }
EOF
}
variable "computed" {
  default = var.other
}
'''


def _tf_definition(tmp_path: Path, terraform: str, name: str = "bucket") -> Path:
    d = tmp_path / "defs"
    d.mkdir(exist_ok=True)
    (d / f"{name}.yaml").write_text(f'''apiVersion: core.oam.dev/v1beta2
kind: ComponentDefinition
metadata:
  name: {name}
  annotations:
    definition.oam.dev/description: a bucket
spec:
  workload:
    definition:
      apiVersion: terraform.core.oam.dev/v1beta1
      kind: Configuration
  schematic:
    terraform:
{terraform}''')
    return d


def _app(tmp_path: Path, properties: str, traits: str = "") -> str:
    p = tmp_path / "app.yaml"
    p.write_text(f'''apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: cloud
  namespace: team
spec:
  components:
    - name: store
      type: bucket
      properties:
{properties}
{traits}''')
    return str(p)


def test_hcl_variables_skip_strings_comments_heredocs_and_nested_blocks() -> None:
    got = {v.name: v for v in hcl.variables(HCL)}
    assert list(got) == ["bucket", "tags", "size", "policy", "computed"]
    assert got["bucket"].required and got["bucket"].description == "Bucket name" and got["bucket"].type == "string"
    assert got["tags"].default == {"team": "a", "env": "dev"} and got["tags"].type == "map(string)"
    assert got["size"].default == 3 and hcl.json_type("", 3) == {"type": "number"}
    assert got["policy"].default.startswith("<<EOF")  # not literal data: kept as text
    assert got["computed"].default == "var.other"
    with pytest.raises(hcl.HclError) as err:
        hcl.variables('variable "x" {\n  default = "open\n}\n')
    assert err.value.line == 2


def _config(props: Any, tf: dict[str, Any] | None = None) -> dict[str, Any]:
    return configuration("bucket", tf or {"configuration": "variable \"a\" {}"}, {"k": "v"}, "store", props, "team",
                         Location(file="app.yaml", line=9))


def test_configuration_fields_as_kubevela_sets_them() -> None:
    tf = {"configuration": "https://example.com/m.git", "type": "remote", "path": "mods/b",
          "providerRef": {"name": "aws", "namespace": "default"},
          "writeConnectionSecretToRef": {"name": "def-conn"}}
    obj = _config({"acl": "private", "customRegion": "eu", "forceDelete": True, "deleteResource": False,
                   "path": "ignored", "gitCredentialsSecretReference": {"name": "git", "extra": 1}}, tf)
    assert obj["apiVersion"] == "terraform.core.oam.dev/v1beta2" and obj["kind"] == "Configuration"
    assert obj["metadata"] == {"creationTimestamp": None, "name": "store", "namespace": "team",
                               "annotations": {"k": "v"}}
    spec = obj["spec"]
    assert spec["remote"] == "https://example.com/m.git" and spec["path"] == "mods/b" and "hcl" not in spec
    assert spec["providerRef"] == {"name": "aws", "namespace": "default"}  # the definition's
    assert spec["writeConnectionSecretToRef"] == {"name": "def-conn", "namespace": "team"}  # app namespace
    assert spec["customRegion"] == "eu" and spec["forceDelete"] is True and spec["deleteResource"] is False
    assert spec["gitCredentialsSecretReference"] == {"name": "git"}  # typed: the unknown sub-field dropped
    assert spec["gitRef"] == {} and obj["status"] == {"apply": {}, "destroy": {}}
    # the five keys KubeVela keeps out of the variables; the others stay, spec fields included
    assert spec["variable"] == {"acl": "private", "deleteResource": False, "path": "ignored"}


def test_configuration_hcl_and_given_references_win() -> None:
    obj = _config({"writeConnectionSecretToRef": {"name": "mine", "namespace": "elsewhere"},
                   "providerRef": {"name": "p"}},
                  {"configuration": "variable \"a\" {}", "providerRef": {"name": "def"}})
    spec = obj["spec"]
    assert spec["hcl"] == 'variable "a" {}' and "remote" not in spec
    assert spec["writeConnectionSecretToRef"] == {"name": "mine", "namespace": "elsewhere"}
    assert spec["providerRef"] == {"name": "p"}
    assert spec["variable"] == {}


def test_configuration_type_errors_are_located_input_errors() -> None:
    with pytest.raises(InputError) as err:
        _config({"forceDelete": "yes"})
    text = err.value.render()
    assert "failed to convert Terraform component properties" in text and "forceDelete of type bool" in text
    assert "app.yaml:9" in text
    with pytest.raises(InputError) as err:
        configuration("bucket", {"configuration": "x"}, {}, "store", {"ForceDelete": 1}, "team",
                                Location(file="app.yaml", line=9),
                                lambda key: Location(file="app.yaml", line=12, path=key))
    assert "app.yaml:12: ForceDelete:" in err.value.render()  # Go matches field names ignoring case
    with pytest.raises(InputError, match="terraform configuration is not set"):
        _config({}, {"configuration": ""})


def test_render_terraform_component_from_catalog_definitions(evaluator: Evaluator) -> None:
    text = dry_run(Inputs(str(ROOT / "golden/comp-terraform/app.yaml"), (), (str(CATALOG_DEFS),)), evaluator)
    assert text.count("kind: Configuration") == 3
    assert "workload.oam.dev/type: alibaba-oss" in text and "remote: https://github.com/kubevela-contrib" in text


def test_patch_trait_on_terraform_fails_as_kubevela_and_outputs_traits_work(tmp_path: Path,
                                                                            evaluator: Evaluator) -> None:
    defs = _tf_definition(tmp_path, "      configuration: |\n        variable \"acl\" {}\n")
    (defs / "note.cue").write_text('''note: {
	type: "trait"
	attributes: appliesToWorkloads: ["*"]
}
template: {
	outputs: note: {apiVersion: "v1", kind: "ConfigMap", data: component: context.name}
	parameter: {}
}
''')
    app = _app(tmp_path, "        acl: private", "      traits:\n        - type: note\n")
    text = dry_run(Inputs(app, (), (str(defs),)), evaluator)
    assert "kind: Configuration" in text and "component: store" in text and "trait.oam.dev/type: note" in text
    labels = "      traits:\n        - type: labels\n          properties: {a: b}\n"
    app = _app(tmp_path, "        acl: private", labels)
    with pytest.raises(InputError) as err:
        dry_run(Inputs(app, (), (str(defs),)), evaluator)
    assert "patch trait labels into an invalid workload" in err.value.render()
    assert "Terraform component" in err.value.render()


def test_def_show_and_vet_read_terraform_definitions(tmp_path: Path, evaluator: Evaluator) -> None:
    table = deflib.parameter_table("alibaba-oss", "component", (str(CATALOG_DEFS),), evaluator)
    rows = {r.path: r for r in table.rows}
    assert rows["bucket"].default == '"vela-website"' and rows["acl"].type == "string"
    assert "writeConnectionSecretToRef" in rows
    remote = deflib.parameter_table("alibaba-vpc", "component", (str(CATALOG_DEFS),), evaluator)
    assert not remote.rows and any("not read offline" in n for n in remote.notes)
    files = sorted(str(p) for p in CATALOG_DEFS.glob("*.yaml"))
    assert deflib.vet_files(files, evaluator).passed == tuple(files)
    bad = _tf_definition(tmp_path, "      type: remote\n      configuration: \"\"\n", "empty") / "empty.yaml"
    broken = _tf_definition(tmp_path, "      configuration: |\n        variable \"a\" {\n", "broken") / "broken.yaml"
    result = deflib.vet_files([str(bad), str(broken)], evaluator)
    assert not result.passed
    messages = " | ".join(p.message for p in result.problems)
    assert "terraform configuration is not set" in messages and "unclosed `{`" in messages


def test_deploy_steps_leave_terraform_components_out_as_kubevela_does(tmp_path: Path, evaluator: Evaluator) -> None:
    from velapy.pipeline import compile_app
    defs = _tf_definition(tmp_path, "      configuration: |\n        variable \"acl\" {}\n")
    (tmp_path / "clusters.yaml").write_text("clusters:\n  - name: east\n    version: \"1.28\"\n")
    topology = "  policies:\n    - name: east\n      type: topology\n      properties: {clusters: [east]}\n"

    def plan_of(extra: str) -> Any:
        app = _app(tmp_path, "        acl: private", extra)
        return compile_app(Inputs(app, (), (str(defs),), clusters=str(tmp_path / "clusters.yaml")), evaluator)

    # no policies: KubeVela generates apply-component steps, which apply Terraform components too
    assert [o.obj["kind"] for objs in plan_of("").bundles().values() for o in objs] == ["Configuration"]
    # a topology: the generated deploy step skips it (ignoreTerraformComponent defaults to true), and says so
    plan = plan_of(topology)
    assert all(not objs for objs in plan.bundles().values())
    assert any("leaves out the Terraform component store" in w.message for w in plan.warnings)
