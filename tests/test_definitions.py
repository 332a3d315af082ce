"""definitions: the .cue and YAML forms load without evaluation; -d wins; problems are located."""

from __future__ import annotations

from pathlib import Path

import pytest

from velapy.cue.engine import Evaluator, Instance
from velapy.errors import InputError
from velapy.load.definitions import load_registry, parse_cue_definition

CUE_DEF = '''import (
	"strings"
)

upper: {
	type: "component"
	description: "Upper-cases a name"
	attributes: workload: definition: {apiVersion: "v1", kind: "ConfigMap"}
}
template: {
	output: {
		apiVersion: "v1"
		kind:       "ConfigMap"
		data: name: strings.ToUpper(parameter.name)
	}
	parameter: name: string
}
'''

YAML_DEF = '''apiVersion: core.oam.dev/v1beta1
kind: TraitDefinition
metadata:
  name: tagger
  annotations:
    definition.oam.dev/description: Adds a tag label
spec:
  appliesToWorkloads: ["*"]
  schematic:
    cue:
      template: |
        import "strings"

        patch: metadata: labels: tag: strings.ToLower(parameter.tag)
        parameter: tag: string
'''


def test_cue_form(tmp_path: Path, evaluator: Evaluator) -> None:
    d = parse_cue_definition(CUE_DEF, "upper.cue")
    assert (d.name, d.kind, d.description) == ("upper", "component", "Upper-cases a name")
    assert d.attributes == {"workload": {"definition": {"apiVersion": "v1", "kind": "ConfigMap"}}}
    assert d.template is not None and d.template.imports == ('"strings"',) and d.template.line == 10
    (r,) = evaluator.evaluate([Instance(d.template, {"name": "abc"}, {})])
    assert r.value["output"]["data"] == {"name": "ABC"}


def test_yaml_form_and_error_lines_point_into_the_yaml_file(tmp_path: Path, evaluator: Evaluator) -> None:
    (tmp_path / "tagger.yaml").write_text(YAML_DEF)
    reg = load_registry([tmp_path])
    d = reg.get("trait", "tagger")
    assert d is not None and d.description == "Adds a tag label" and not d.builtin
    assert d.template is not None and d.template.imports == ('"strings"',)
    (r,) = evaluator.evaluate([Instance(d.template, {"tag": "ABC"}, {})])
    assert r.value["patch"] == {"metadata": {"labels": {"tag": "abc"}}}
    (bad,) = evaluator.evaluate([Instance(d.template, {"tag": 1}, {})])
    assert bad.errors and bad.errors[0].in_parameter


def test_user_definitions_win_over_builtins(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "scaler.cue").write_text('scaler: {type: "trait", description: "mine"}\ntemplate: {}\n')
    reg = load_registry([tmp_path])
    d = reg.get("trait", "scaler")
    assert d is not None and d.description == "mine"
    assert load_registry().get("trait", "scaler").description != "mine"  # type: ignore[union-attr]


@pytest.mark.parametrize(("src", "message"), [
    ('a: {type: "trait"}\nb: {type: "trait"}\ntemplate: {}\n', "duplicated definition name found"),
    ('a: {type: "gadget"}\ntemplate: {}\n', "type must be one of"),
    ('a: {type: "trait", description: x.y}\ntemplate: {}\n', "metadata must be literal data"),
    ('a: {type: "trait"}\ntemplate: {\n\tpatch: {\n}\n', "missing"),
])
def test_bad_definition_files_are_located_errors(tmp_path: Path, src: str, message: str) -> None:
    (tmp_path / "bad.cue").write_text(src)
    with pytest.raises(InputError) as info:
        load_registry([tmp_path])
    (diag,) = info.value.diagnostics
    assert message in diag.message
    assert diag.location.file.endswith("bad.cue") and diag.location.line >= 1


def test_missing_definition_dir_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_registry([tmp_path / "nope"])


def test_builtins_have_every_kind(registry: object) -> None:
    from velapy.load.definitions import Registry
    assert isinstance(registry, Registry)
    for kind, names in {
        "component": ["webservice", "worker", "task", "k8s-objects", "ref-objects", "cron-task", "daemon",
                      "statefulset"],
        "trait": ["scaler", "labels", "annotations", "env", "expose", "gateway", "storage", "sidecar", "resource",
                  "command", "container-image", "json-patch", "json-merge-patch", "hpa", "cpuscaler"],
    }.items():
        assert set(names) <= set(registry.names(kind)), kind


EXTENSION_TRAIT = '''apiVersion: core.oam.dev/v1beta1
kind: TraitDefinition
metadata:
  name: tagged
  annotations:
    definition.oam.dev/description: first
    definition.oam.dev/description: second
spec:
  extension:
    template: |
      patch: metadata: labels: tag: parameter.tag
      parameter: tag: string
'''


def test_extension_template_is_read_when_there_is_no_schematic(tmp_path: Path, evaluator: Evaluator) -> None:
    # KubeVela pkg/appfile/template.go loadSchematicToTemplate: spec.extension.template is the
    # template when spec.schematic gives none
    (tmp_path / "t.yaml").write_text(EXTENSION_TRAIT)
    reg = load_registry([tmp_path])
    d = reg.get("trait", "tagged")
    assert d is not None and d.template is not None and "extension" not in d.attributes
    r = evaluator.evaluate([Instance(d.template, {"tag": "x"}, {})])[0]
    assert not r.errors and r.value["patch"] == {"metadata": {"labels": {"tag": "x"}}}
    # a schematic template wins over the extension one
    both = EXTENSION_TRAIT.replace("spec:\n", "spec:\n  schematic:\n    cue:\n      template: |\n"
                                              "        parameter: other: string\n", 1)
    (tmp_path / "t.yaml").write_text(both)
    d = load_registry([tmp_path]).get("trait", "tagged")
    assert d is not None and d.template is not None and "other" in d.template.body


def test_duplicated_key_in_a_definition_keeps_the_last_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(EXTENSION_TRAIT)
    reg = load_registry([tmp_path])
    d = reg.get("trait", "tagged")
    assert d is not None and d.description == "second"  # sigs.k8s.io/yaml keeps the last
    [w] = reg.warnings
    assert w.location.line == 7 and "first at line 6, again at line 7" in w.message
    # a file holding no definition is not read at all: nothing to warn about
    (tmp_path / "t.yaml").write_text("name: a\nname: b\n")
    assert load_registry([tmp_path]).warnings == []
