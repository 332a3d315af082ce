"""velapy.load.yamlio: located reading of user YAML, and go-yaml v2 (sigs.k8s.io/yaml) compatible writing.

Expected texts are written by hand from go-yaml v2's rules: keys in its natural order, two-space
indentation, sequences level with their key, strings that would read back as another type in
double quotes, indicators forcing single quotes, `|` blocks for multi-line strings, folding at
the first single space past column 80.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from velapy.errors import InputError
from velapy.load.yamlio import Document, dump_yaml, dump_yaml_all, format_path, load_documents, load_file

APP = """\
apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: demo
spec:
  components:
    - name: front
      type: webservice
    - name: back
      type: webservice
      properties:
        image: "nginx:1.21"
        ports:
          - port: 8080
            expose: true
        env: {}
      traits: []
"""


def only(text: str) -> Document:
    documents = load_documents(text, "app.yaml")
    assert len(documents) == 1
    return documents[0]


def error_of(text: str) -> InputError:
    with pytest.raises(InputError) as caught:
        load_documents(text, "app.yaml")
    return caught.value


# ---------------------------------------------------------------------------------------------
# Reading: data and positions
# ---------------------------------------------------------------------------------------------


def test_reads_plain_data() -> None:
    doc = only(APP)
    back = doc.data["spec"]["components"][1]
    assert back["properties"] == {"image": "nginx:1.21", "ports": [{"port": 8080, "expose": True}], "env": {}}
    assert back["traits"] == []
    assert (doc.file, doc.index) == ("app.yaml", 0)


def test_position_of_nested_scalar_points_at_its_value() -> None:
    loc = only(APP).location(["spec", "components", 1, "properties", "ports", 0, "port"])
    assert (loc.file, loc.line, loc.column) == ("app.yaml", 14, 19)
    assert loc.path == "spec.components[1].properties.ports[0].port"


def test_position_of_block_collection_points_at_its_key_and_items_at_their_start() -> None:
    doc = only(APP)
    properties = doc.location(["spec", "components", 1, "properties"])
    assert (properties.line, properties.column) == (11, 7)
    item = doc.location(["spec", "components", 1])
    assert (item.line, item.column) == (9, 7)
    flow = doc.location(["spec", "components", 1, "properties", "env"])
    assert (flow.line, flow.column) == (16, 14)
    root = doc.location([])
    assert (root.line, root.column, root.path) == (1, 1, "")


def test_missing_path_falls_back_to_nearest_existing_ancestor() -> None:
    doc = only(APP)
    loc = doc.location(["spec", "components", 1, "properties", "cpu", "limit"])
    assert (loc.line, loc.column) == (11, 7)
    assert loc.path == "spec.components[1].properties.cpu.limit"
    beyond = doc.location(["spec", "components", 7, "name"])
    assert (beyond.line, beyond.column) == (6, 3)
    through_scalar = doc.location(["kind", "x"])
    assert (through_scalar.line, through_scalar.column) == (2, 7)


def test_document_without_positions_still_gives_file_and_path() -> None:
    loc = Document({"a": 1}, "mem.yaml", 0).location(["a"])
    assert (loc.file, loc.line, loc.path) == ("mem.yaml", 0, "a")


def test_multiple_documents_skip_empty_ones_and_keep_their_file_index() -> None:
    text = "---\n# only a comment\n---\na: 1\n---\n---\nnull\n---\nb: [x]\n...\n"
    docs = load_documents(text, "multi.yaml")
    assert [(d.index, d.data) for d in docs] == [(1, {"a": 1}), (4, {"b": ["x"]})]
    assert docs[1].location(["b", 0]).line == 9
    assert load_documents("", "empty.yaml") == []
    assert load_documents("# nothing\n", "empty.yaml") == []


def test_windows_line_endings_and_bom_are_accepted() -> None:
    doc = only("\ufeffa: 1\r\nb:\r\n  c: x\r\n")
    assert doc.data == {"a": 1, "b": {"c": "x"}}
    assert (doc.location(["b", "c"]).line, doc.location(["b", "c"]).column) == (3, 6)


# ---------------------------------------------------------------------------------------------
# Reading: YAML 1.1 scalars as go-yaml v2 (Kubernetes) resolves them
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("on", True),
        ("Yes", True),
        ("y", True),
        ("N", False),
        ("off", False),
        ("TRUE", True),
        ("tRue", "tRue"),
        ("~", None),
        ("Null", None),
        ("", None),
        ("12", 12),
        ("-0", 0),
        ("+5", 5),
        ("0x1F", 31),
        ("0o17", 15),
        ("017", 15),
        ("0b101", 5),
        ("1_000", 1000),
        ("9223372036854775808", 9223372036854775808),
        ("08", 8.0),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("-.inf", -math.inf),
        ("1:20", "1:20"),
        ("2024-01-02", "2024-01-02"),
        ("2024-01-02T10:00:00Z", "2024-01-02T10:00:00Z"),
        ("1e999", "1e999"),
        ("<<x", "<<x"),
        ("nginx:1.21", "nginx:1.21"),
    ],
)
def test_plain_scalars_resolve_like_go_yaml_v2(text: str, value: Any) -> None:
    got = only(f"v: {text}\n").data["v"]
    assert got == value
    assert type(got) is type(value)


def test_nan_and_quoted_scalars() -> None:
    data = only("a: .nan\nb: '1'\nc: \"on\"\nd: |\n  x\ne: !!str 12\nf: !!int '12'\ng: !!float 3\n").data
    assert math.isnan(data["a"])
    assert [data[k] for k in "bcdefg"] == ["1", "on", "x\n", "12", 12, 3.0]
    assert type(data["g"]) is float


def test_non_string_keys_become_strings() -> None:
    assert only("1: a\non: b\n1.5: c\n2.0: d\n").data == {"1": "a", "true": "b", "1.5": "c", "2": "d"}


def test_merge_keys_apply_in_order() -> None:
    text = "base: &b\n  x: 1\n  w: 2\nuse:\n  x: 0\n  <<: *b\n  z: 3\nlist:\n  <<: [{k: 1}, {k: 2, j: 1}]\n"
    data = only(text).data
    assert data["use"] == {"x": 1, "w": 2, "z": 3}
    assert data["list"] == {"k": 1, "j": 1}


def test_aliases_are_copied_not_shared() -> None:
    data = only("a: &x {k: [1]}\nb: *x\n").data
    assert data["a"] == data["b"]
    assert data["a"] is not data["b"]


# ---------------------------------------------------------------------------------------------
# Reading: errors
# ---------------------------------------------------------------------------------------------


def test_syntax_error_names_file_line_column_and_problem() -> None:
    err = error_of("a: 1\nb: [1, 2\nc: 3\n")
    (diag,) = err.diagnostics
    assert diag.location.file == "app.yaml"
    assert diag.location.line == 3
    assert diag.location.column >= 1
    assert "invalid YAML" in diag.message
    assert "flow sequence" in diag.message
    assert "app.yaml:3:" in str(err)


def test_syntax_error_for_bad_indentation() -> None:
    err = error_of("a:\n  b: 1\n c: 2\n")
    assert err.diagnostics[0].location.line == 3
    assert err.exit_code == 2


def test_unacceptable_character_is_located() -> None:
    err = error_of("a: 1\nb: x\x07y\n")
    (diag,) = err.diagnostics
    assert (diag.location.line, diag.location.column) == (2, 5)
    assert "#x0007" in diag.message


def test_duplicate_keys_are_all_reported_with_both_lines() -> None:
    err = error_of("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n---\nx: 1\nx: 2\n")
    messages = [(d.location.line, d.location.path, d.message) for d in err.diagnostics]
    assert messages == [
        (4, "b.c", 'duplicate key "c": first at line 3, again at line 4'),
        (5, "a", 'duplicate key "a": first at line 1, again at line 5'),
        (8, "x", 'duplicate key "x": first at line 7, again at line 8'),
    ]


def test_keys_equal_after_conversion_are_duplicates() -> None:
    err = error_of("on: 1\ntrue: 2\n")
    assert 'duplicate key "true"' in err.diagnostics[0].message


def test_null_and_collection_keys_are_errors() -> None:
    err = error_of("~: 1\n[a]: 2\nok: 3\n")
    assert [d.location.line for d in err.diagnostics] == [1, 2]
    assert "null" in err.diagnostics[0].message


def test_value_not_matching_its_tag_is_an_error() -> None:
    err = error_of("a: !!int abc\n")
    assert err.diagnostics[0].message == 'cannot read "abc" as !!int'


def test_recursive_alias_is_an_error() -> None:
    err = error_of("a: &x [1, *x]\n")
    assert "alias" in err.diagnostics[0].message


def test_load_file_reads_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n", encoding="utf-8")
    (doc,) = load_file(path)
    assert doc.data == {"a": 1}
    assert doc.file == str(path)


def test_load_file_unreadable_is_input_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InputError) as caught:
        load_file(missing)
    assert caught.value.diagnostics[0].location.file == str(missing)
    assert "cannot read" in caught.value.diagnostics[0].message
    with pytest.raises(InputError):
        load_file(tmp_path)


def test_load_file_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InputError) as caught:
        load_file(path)
    loc = caught.value.diagnostics[0].location
    assert (loc.line, loc.column) == (2, 7)


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def test_format_path() -> None:
    assert format_path(["spec", "components", 1, "properties", "ports", 0, "port"]) == (
        "spec.components[1].properties.ports[0].port"
    )
    assert format_path(["metadata", "labels", "app.oam.dev/name"]) == 'metadata.labels["app.oam.dev/name"]'
    assert format_path([0, "name"]) == "[0].name"
    assert format_path(["a.b", "c"]) == '["a.b"].c'
    assert format_path(["with space", 'q"uote']) == '["with space"]["q\\"uote"]'
    assert format_path([]) == ""


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {
        "name": "web",
        "namespace": "default",
        "labels": {
            "workload.oam.dev/type": "webservice",
            "app.oam.dev/name": "demo",
            "app.oam.dev/component": "web",
        },
        "annotations": {},
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app.oam.dev/component": "web"}},
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0.5}},
        "template": {
            "metadata": {"labels": {"app.oam.dev/component": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "nginx:1.21",
                        "command": ["sh", "-c", "echo start\nexec nginx -g 'daemon off;'\n"],
                        "env": [
                            {"name": "DEBUG", "value": "true"},
                            {"name": "WORKERS", "value": "4"},
                            {"name": "EMPTY", "value": ""},
                            {"name": "GREETING", "value": "héllo wörld"},
                        ],
                        "ports": [{"containerPort": 80, "name": "port-80", "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {}},
                        "volumeMounts": [],
                    }
                ],
                "nodeSelector": None,
                "terminationGracePeriodSeconds": 30.0,
            },
        },
    },
}

DEPLOYMENT_YAML = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations: {}
  labels:
    app.oam.dev/component: web
    app.oam.dev/name: demo
    workload.oam.dev/type: webservice
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels:
      app.oam.dev/component: web
  strategy:
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0.5
  template:
    metadata:
      labels:
        app.oam.dev/component: web
    spec:
      containers:
      - command:
        - sh
        - -c
        - |
          echo start
          exec nginx -g 'daemon off;'
        env:
        - name: DEBUG
          value: "true"
        - name: WORKERS
          value: "4"
        - name: EMPTY
          value: ""
        - name: GREETING
          value: héllo wörld
        image: nginx:1.21
        name: web
        ports:
        - containerPort: 80
          name: port-80
          protocol: TCP
        resources:
          limits:
            cpu: 500m
            memory: 128Mi
          requests: {}
        volumeMounts: []
      nodeSelector: null
      terminationGracePeriodSeconds: 30
"""


def test_deployment_is_written_like_sigs_k8s_yaml() -> None:
    assert dump_yaml(DEPLOYMENT) == DEPLOYMENT_YAML


def test_writing_is_deterministic_and_ignores_insertion_order() -> None:
    reordered = dict(reversed(list(DEPLOYMENT.items())))
    assert dump_yaml(DEPLOYMENT) == dump_yaml(DEPLOYMENT) == dump_yaml(reordered)


def test_written_text_reads_back_to_the_same_data() -> None:
    assert only(dump_yaml(DEPLOYMENT)).data == {
        **DEPLOYMENT,
        "spec": {
            **DEPLOYMENT["spec"],
            "template": {
                **DEPLOYMENT["spec"]["template"],
                "spec": {**DEPLOYMENT["spec"]["template"]["spec"], "terminationGracePeriodSeconds": 30},
            },
        },
    }


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("1", '"1"'),
        ("true", '"true"'),
        ("", '""'),
        ("on", '"on"'),
        ("y", '"y"'),
        ("No", '"No"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("1.5", '"1.5"'),
        ("0x1F", '"0x1F"'),
        ("1_000", '"1_000"'),
        ("1e3", '"1e3"'),
        (".inf", '".inf"'),
        ("1:20", '"1:20"'),
        ("2024-01-02", '"2024-01-02"'),
        ("a: b", "'a: b'"),
        ("x:", "'x:'"),
        ("*x", "'*x'"),
        ("&x", "'&x'"),
        ("!x", "'!x'"),
        (" lead", "' lead'"),
        ("trail ", "'trail '"),
        ("-", "'-'"),
        ("- x", "'- x'"),
        ("#x", "'#x'"),
        ("a #b", "'a #b'"),
        ("[x]", "'[x]'"),
        ("{x}", "'{x}'"),
        ("it's", "it's"),
        ("'q'", "'''q'''"),
        ("@x", "'@x'"),
        ("---", "'---'"),
        ("a#b", "a#b"),
        ("-x", "-x"),
        ("http://a:80/b", "http://a:80/b"),
        ("a, b", "a, b"),
        ("<<", "<<"),
        ("yes please", "yes please"),
        ("nan", "nan"),
        ("tab\there", '"tab\\there"'),
        ('say "hi"', 'say "hi"'),
        ("back\\slash", "back\\slash"),
    ],
)
def test_string_quoting(value: str, written: str) -> None:
    assert dump_yaml({"k": value}) == f"k: {written}\n"


def test_quoting_applies_to_keys_too() -> None:
    assert dump_yaml({"on": 1, "a: b": 2, "": 3, "1": 4}) == '"": 3\n"1": 4\n\'a: b\': 2\n"on": 1\n'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a\nb", "|-\n  a\n  b\n"),
        ("a\nb\n", "|\n  a\n  b\n"),
        ("a\n\n", "|+\n  a\n\n"),
        ("\n", "|2+\n\n"),
        ("  indented\nnext\n", "|2\n    indented\n  next\n"),
        ("\nlead", "|2-\n\n  lead\n"),
        ("a\n\nb", "|-\n  a\n\n  b\n"),
        ("x: 1\n# not a comment\n", "|\n  x: 1\n  # not a comment\n"),
        ("trailing \nspace", '"trailing \\nspace"\n'),
        ("tab\tinside\n", '"tab\\tinside\\n"\n'),
    ],
)
def test_multi_line_strings(value: str, written: str) -> None:
    assert dump_yaml({"s": value}) == "s: " + written


def test_multi_line_string_inside_a_list_and_as_a_key() -> None:
    assert dump_yaml({"l": ["x\ny\n"]}) == "l:\n- |\n  x\n  y\n"
    assert dump_yaml({"a\nb": 1}) == "? |-\n  a\n  b\n: 1\n"


def test_empty_collections_and_nulls() -> None:
    value = {"a": {}, "b": [], "c": {"d": {}, "e": [[], {}]}, "f": None, "g": [None]}
    assert dump_yaml(value) == "a: {}\nb: []\nc:\n  d: {}\n  e:\n  - []\n  - {}\nf: null\ng:\n- null\n"
    assert dump_yaml({}) == "{}\n"
    assert dump_yaml([]) == "[]\n"
    assert dump_yaml(None) == "null\n"


def test_nested_lists_and_maps_in_lists() -> None:
    value = [[1, [2, 3]], {"b": 1, "a": [{"x": 1}]}]
    assert dump_yaml(value) == "- - 1\n  - - 2\n    - 3\n- a:\n  - x: 1\n  b: 1\n"


def test_unicode_is_kept_but_characters_outside_the_bmp_are_escaped() -> None:
    assert dump_yaml({"名前": "日本語", "e": "café"}) == "e: café\n名前: 日本語\n"
    assert dump_yaml({"e": "smile 🙂"}) == 'e: "smile \\U0001F642"\n'
    assert dump_yaml({"e": "nbsp\xa0here"}) == "e: nbsp\xa0here\n"
    assert dump_yaml({"e": "bell\x07"}) == 'e: "bell\\a"\n'


WORDS = " ".join(f"w{i:03d}" for i in range(1, 31))


def test_long_plain_string_folds_after_column_80() -> None:
    assert dump_yaml({"description": WORDS}) == (
        "description: w001 w002 w003 w004 w005 w006 w007 w008 w009 w010 w011 w012 w013 w014\n"
        "  w015 w016 w017 w018 w019 w020 w021 w022 w023 w024 w025 w026 w027 w028 w029 w030\n"
    )


def test_long_quoted_strings_fold_too() -> None:
    assert dump_yaml({"tabbed": WORDS + "\t"}) == (
        'tabbed: "w001 w002 w003 w004 w005 w006 w007 w008 w009 w010 w011 w012 w013 w014 w015\n'
        '  w016 w017 w018 w019 w020 w021 w022 w023 w024 w025 w026 w027 w028 w029 w030\\t"\n'
    )
    assert dump_yaml({"q": "#" + WORDS}) == (
        "q: '#w001 w002 w003 w004 w005 w006 w007 w008 w009 w010 w011 w012 w013 w014 w015 w016\n"
        "  w017 w018 w019 w020 w021 w022 w023 w024 w025 w026 w027 w028 w029 w030'\n"
    )
    unbroken = "x" * 100
    assert dump_yaml({"u": unbroken}) == f"u: {unbroken}\n"


def test_long_keys_are_written_as_explicit_keys() -> None:
    assert dump_yaml({"k" * 128: 1}) == "k" * 128 + ": 1\n"
    assert dump_yaml({"k" * 129: 1}) == "? " + "k" * 129 + "\n: 1\n"


@pytest.mark.parametrize(
    ("number", "written"),
    [
        (0, "0"),
        (-7, "-7"),
        (2**63, "9223372036854775808"),
        (2**64, "1.8446744073709552e+19"),
        (0.5, "0.5"),
        (-0.0, "0"),
        (2.0, "2"),
        (1e6, "1000000"),
        (1e19, "10000000000000000000"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (123456.5, "123456.5"),
        (1234567.5, "1.2345675e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e-7, "1e-07"),
        (0.1 + 0.2, "0.30000000000000004"),
        (True, "true"),
        (False, "false"),
    ],
)
def test_numbers_are_written_as_go_prints_them_after_json(number: float, written: str) -> None:
    assert dump_yaml({"num": number}) == f"num: {written}\n"


def test_nan_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        dump_yaml({"n": math.nan})


def test_keys_sort_in_go_yaml_natural_order() -> None:
    value = {k: 0 for k in ["a10", "a2", "b", "B", "a_b", "aB", "a-b", "a1"]}
    assert [line.split(":")[0] for line in dump_yaml(value).splitlines()] == [
        "B",
        "a-b",
        "a_b",
        "a1",
        "a2",
        "a10",
        "aB",
        "b",
    ]


def test_non_string_keys_and_unknown_types() -> None:
    assert dump_yaml({2: "a", None: "b", False: "c"}) == '"2": a\n"false": c\n"null": b\n'
    with pytest.raises(TypeError):
        dump_yaml({"s": {1, 2}})


def test_dump_all_joins_documents() -> None:
    assert dump_yaml_all([{"a": 1}, "x", {"b": [1]}]) == "a: 1\n---\nx\n---\nb:\n- 1\n"
    assert dump_yaml_all([]) == ""


def test_bad_indentation_gets_a_hint() -> None:
    err = error_of("a:\n  b: 1\n c: 2\n")
    assert "indentation" in err.diagnostics[0].hint
    assert "end of the indented block" in err.diagnostics[0].message


def test_pure_python_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    from velapy.load import yamlio

    fast, fast_error = load_documents(APP, "app.yaml"), str(error_of("a: [1\n"))
    monkeypatch.setattr(yamlio, "_COMPOSERS", (yamlio._PureComposer,))
    pure, pure_error = load_documents(APP, "app.yaml"), str(error_of("a: [1\n"))
    assert [d.data for d in pure] == [d.data for d in fast]
    path = ["spec", "components", 1, "properties", "ports", 0, "port"]
    assert pure[0].location(path) == fast[0].location(path)
    assert pure_error == fast_error


# ---------------------------------------------------------------------------------------------
# The fast writer (common shapes straight to text) agrees with the emitter byte for byte
# ---------------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from velapy.load import yamlio  # noqa: E402

_TRICKY_WORDS = ["", " ", "on", "yes", "null", "~", "1", "0x1F", "1:20", "2024-01-02", "-", "- a", "a: b", "a:b",
                 "#x", "a #b", "x'y", 'say "hi"', "back\\slash", "*star", "&amp", "!bang", "%p", "@at", "`tick",
                 "{a}", "[a]", "a,b", "?", "? q", ":", ": x", "tail ", " lead", "é", "a\tb", "line\nbreak",
                 "x" * 130, "word " * 20, "-5", ".5", "1e3", ".inf", "true", "0o17"]
_texts = st.one_of(st.sampled_from(_TRICKY_WORDS), st.text(alphabet="ab :'\"#-,[]{}!*&%@`?\\.019eE\n", max_size=24),
                   st.text(max_size=8), st.from_regex(r"[a-z0-9 ./:'\"-]{0,40}", fullmatch=True))
_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), _texts)
_data = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_texts, inner, max_size=4)), max_leaves=24)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_texts, _data, max_size=5))
def test_fast_writer_matches_the_emitter(value: dict[str, Any]) -> None:
    fast = yamlio._fast_dump(value)
    if fast is not None:
        assert fast == yamlio._emitter_dump(value)
    assert dump_yaml(value) == yamlio._emitter_dump(value)


_long_texts = st.lists(st.sampled_from(["a", "word", "x'y", 'say "hi"', "#x", "- a", "a: b", "", "tail,", "  "]),
                      min_size=8, max_size=40).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.recursive(_long_texts, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3), st.dictionaries(st.sampled_from(["k", "key", "a-longer-key"]), inner,
                                                              min_size=1, max_size=3)), max_leaves=8))
def test_fast_writer_folds_long_strings_as_the_emitter_does(value: Any) -> None:
    doc = {"top": value}
    fast = yamlio._fast_dump(doc)
    if fast is not None:
        assert fast == yamlio._emitter_dump(doc)


def test_fast_writer_takes_the_common_shape_and_leaves_the_rest() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"a": "on"}},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "args": ["-x", "a b"],
                                                                        "ports": [], "env": [{}]}]}}}}
    assert yamlio._fast_dump(obj) == yamlio._emitter_dump(obj)
    assert yamlio._fast_dump({"data": {"script": "line\nbreak\n"}}) is None  # literal block
    folds = {"k": "x " * 50, "warnings": [{"message": "a long message, " * 8 + "it's 'quoted'",
                                            "hint": ["- " + "say \"hi\" " * 12, ["nested  spaces " * 9]]}]}
    assert yamlio._fast_dump(folds) == yamlio._emitter_dump(folds)  # folded lines: the emitter's writer
    assert yamlio._fast_dump({"k": "é"}) is None  # not ASCII
    assert yamlio._fast_dump({"x" * 130: 1}) is None  # explicit key


def test_keys_written_as_yaml11_boolean_words_are_recorded_with_a_warning() -> None:
    from velapy.load.yamlio import load_documents
    [doc] = load_documents('a:\n  y: 1\n  "n": 2\n  b:\n    true: 3\n  Off: 4\n', "f.yaml")
    assert doc.data == {"a": {"true": 1, "n": 2, "b": {"true": 3}, "false": 4}}
    assert doc.word_keys == {("a", "true"): "y", ("a", "false"): "Off"}  # quoted and `true` itself: not
    warnings = doc.word_key_warnings()
    assert [w.location.line for w in warnings] == [2, 6]
    assert 'the key y is read as the boolean true, so this field is named "true"' in warnings[0].message
