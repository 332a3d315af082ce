"""cuesyntax: file outline and literal data (with patch tags) as the engine prints them."""

from __future__ import annotations

import pytest

from velapy.cue.cuesyntax import CueSyntaxError, outline, parse_data, parse_value

DEF = '''import (
	"strings"
	l "list"
)

// a comment
mytrait: {
	type: "trait"
	description: "Does \\"things\\""
	attributes: appliesToWorkloads: ["deployments.apps"]
}
template: {
	patch: spec: replicas: parameter.replicas
	parameter: replicas: *1 | int
}
'''


def test_outline_splits_imports_metadata_and_template() -> None:
    o = outline(DEF)
    assert o.imports == ('"strings"', 'l "list"')
    assert [f.label for f in o.fields] == ["mytrait", "template"]
    tmpl = o.fields[1]
    assert DEF[tmpl.value_start:tmpl.value_end].startswith("{\n\tpatch:")
    assert DEF[tmpl.value_start:tmpl.value_end].endswith("}")
    assert tmpl.value_line == 12


def test_metadata_block_reads_as_literal_data() -> None:
    o = outline(DEF)
    meta = o.fields[0]
    value = parse_value(DEF[meta.value_start:meta.value_end])
    assert value == {"type": "trait", "description": 'Does "things"',
                     "attributes": {"appliesToWorkloads": ["deployments.apps"]}}


def test_exported_data_tags_attach_to_the_first_label_of_a_chain() -> None:
    printed = '''x: {
	// +patchStrategy=jsonMergePatch
	patch: spec: {
		// +patchKey=name
		containers: [{
			name: "a"
		}]
		// +patchStrategy=retainKeys
		replicas: 3
	}
}
'''
    data, tags = parse_data(printed)
    assert data == {"x": {"patch": {"spec": {"containers": [{"name": "a"}], "replicas": 3}}}}
    assert tags == {
        ("x", "patch"): {"patchStrategy": "jsonMergePatch"},
        ("x", "patch", "spec", "containers"): {"patchKey": "name"},
        ("x", "patch", "spec", "replicas"): {"patchStrategy": "retainKeys"},
    }


def test_scalars_strings_and_numbers() -> None:
    data, _ = parse_data('a: """\n\tline one\n\t  "two"\n\t"""\nb: 1.5\nc: -2\nd: 1e+3\ne: null\nf: true\n'
                         'g: "\\u00e9\\t"\n"h-i": 0x1F\nj: []\nk: {}\n')
    assert data == {"a": 'line one\n  "two"', "b": 1.5, "c": -2, "d": 1000.0, "e": None, "f": True,
                    "g": "é\t", "h-i": 31, "j": [], "k": {}}


def test_a_blank_line_detaches_a_comment() -> None:
    _, tags = parse_data("// +patchKey=name\n\na: [1]\n")
    assert tags == {}


@pytest.mark.parametrize("src", ["a: b.c\n", "a: [1, 2\n", 'a: "open\n', "a: 1 +\n"])
def test_non_literal_or_broken_input_is_a_located_error(src: str) -> None:
    with pytest.raises(CueSyntaxError) as info:
        parse_data(src)
    assert info.value.line >= 1


def test_outline_reports_unbalanced_braces() -> None:
    with pytest.raises(CueSyntaxError) as info:
        outline("a: {\n b: 1\n")
    assert "missing" in info.value.message


def test_unicode_labels_are_identifiers() -> None:
    # CUE exports a label made of Unicode letters bare (found by the fuzzer: a ConfigMap key "À")
    data, _tags = parse_data('velapy_0: {\n\tdata: {\n\t\tÀ:    "1"\n\t\tключ: "v"\n\t}\n}\n')
    assert data == {"velapy_0": {"data": {"À": "1", "ключ": "v"}}}
