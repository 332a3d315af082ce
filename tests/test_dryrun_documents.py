"""The dry-run stream for people and pipes: one object per YAML document, no empty documents.

Every golden `dry-run.yaml` (vela's layout, byte for byte) is the input: the stream velapy prints
by default must hold the same objects in the same order, with no document that is not an object.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from velapy import cli
from velapy.bundle.dryrun import one_object_per_document
from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent
VELA_STREAMS = sorted(ROOT.glob("golden/*/expected/dry-run.yaml"))


def _documents(text: str) -> list[str]:
    """The raw text of each document between `---` lines (the part before the first `---` too)."""
    docs: list[list[str]] = [[]]
    for line in text.split("\n"):
        if line == "---":
            docs.append([])
        else:
            docs[-1].append(line)
    return ["\n".join(d) for d in docs]


def test_there_are_vela_streams_to_check() -> None:
    assert len(VELA_STREAMS) >= 50


@pytest.mark.parametrize("path", VELA_STREAMS, ids=lambda p: p.parent.parent.name)
def test_the_same_objects_without_empty_documents(path: Path) -> None:
    vela = path.read_text(encoding="utf-8")
    warnings, stream = one_object_per_document(vela)
    assert [w for w in vela.split("\n") if w.startswith("WARNING: ")] == [f"WARNING: {w}" for w in warnings]
    objects = [d for d in yaml.safe_load_all(vela.replace("WARNING: ", "# ")) if d is not None]
    assert list(yaml.safe_load_all(stream)) == objects
    assert stream == "" or (stream.startswith("---\n") and stream.endswith("\n") and not stream.endswith("\n\n---\n"))
    raw = _documents(stream)
    assert raw[0] == ""  # nothing before the first `---`
    for doc in raw[1:]:
        assert yaml.safe_load(doc) is not None, f"an empty document in {path}:\n{doc}"
    # headers and trait comments are kept, each right above its object
    assert [x for x in stream.split("\n") if x.startswith("#") and x != "# (no objects)"] == \
        [x for x in vela.split("\n") if x.startswith("#")]


def test_warnings_a_component_without_objects_and_block_scalars() -> None:
    vela = ("WARNING: policy p not referenced by application\n\n"
            "---\n# Application(a) -- Component(x)\n---\n\nnull\n\n---\n\n"
            "---\n# Application(a) -- Component(y)\n---\n\nk: |+\n  v\n\n\n---\n## From the trait t\nz: 1\n\n---\n\n")
    warnings, stream = one_object_per_document(vela)
    assert warnings == ["policy p not referenced by application"]
    assert stream == ("---\n# Application(a) -- Component(x)\n# (no objects)\n# Application(a) -- Component(y)\n"
                      "k: |+\n  v\n\n---\n## From the trait t\nz: 1\n")
    assert list(yaml.safe_load_all(stream)) == [{"k": "v\n\n"}, {"z": 1}]
    assert one_object_per_document("---\n# Application(a) -- Component(x)\n---\n\nnull\n\n---\n\n") == \
        ([], "# Application(a) -- Component(x)\n# (no objects)\n")


def test_the_cli_prints_documents_by_default_and_vela_bytes_on_request(
        evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))
    case = ROOT / "golden" / "dry-run-standalone"
    args = ["render", str(case / "app.yaml"), *(w for f in ("workflow.yaml", "policies.yaml", "unused-policy.yaml")
                                                for w in ("-f", str(case / f)))]
    runner = CliRunner(mix_stderr=False)
    vela = runner.invoke(cli.main, [*args, "--vela-layout"])
    assert vela.exit_code == 0 and vela.stdout == (case / "expected" / "dry-run.yaml").read_text(encoding="utf-8")
    plain = runner.invoke(cli.main, args)
    assert plain.exit_code == 0
    assert (plain.stderr, plain.stdout) == ("warning: policy forgotten not referenced by application\n",
                                            one_object_per_document(vela.stdout)[1])
    assert runner.invoke(cli.main, [*args, "--vela-layout", "-o", "x"]).exit_code == 2
