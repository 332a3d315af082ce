"""README.md runs as written: its runnable command blocks, their exit codes and their shown output.

A fenced `sh` block right after a `<!-- runnable -->` line is run line by line, from the root of a
copy of the repository (a git repository with an `origin/main`, as a fresh clone has). `cd DIR`
changes the folder for the rest of the block; `velapy ...` runs the real command line in this
process (sharing the test session's CUE engine); anything else runs in bash. A command must exit
0 unless its comment starts with `exit N`. A `text` block right after an `<!-- output -->` line is
what the last command of the runnable block before it printed (stdout, then stderr).
Every `velapy` line of any `sh` block, runnable or not, must name an existing command and options.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from velapy import cli
from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RUNNABLE = "<!-- runnable -->"
OUTPUT = "<!-- output -->"
_COMMENT = re.compile(r"(?:^|\s)#\s?(?P<text>.*)$")
_EXIT = re.compile(r"^exit (?P<code>\d+)\b")
_INVOCATION = re.compile(r"(?:^|[\s(])velapy(?=\s|$)(?P<args>(?:[ \t]+[^\s'\"()|&;<>]+)*)")


@dataclass
class Block:
    heading: str
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[str]
    runnable: bool = False
    output: list[str] | None = None  # the `<!-- output -->` block that follows, if any


@dataclass
class Command:
    text: str  # without the comment
    expected_exit: int
    line: int
    comment: str = ""
    args: list[str] = field(default_factory=list)


def parse_readme(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.split("\n")
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if line.startswith("```") and len(line) > 3:
            lang = line[3:].strip()
            marker = lines[i - 1].strip() if i > 0 else ""
            end = lines.index("```", i + 1)
            body = lines[i + 1:end]
            if marker == OUTPUT:
                assert blocks and blocks[-1].runnable, f"README.md:{i + 1}: an output block follows no runnable block"
                blocks[-1].output = body
            else:
                blocks.append(Block(heading, i + 1, lang, body, runnable=marker == RUNNABLE))
                assert marker != RUNNABLE or lang == "sh", f"README.md:{i + 1}: a runnable block must be ```sh"
            i = end + 1
            continue
        i += 1
    return blocks


def commands(block: Block) -> list[Command]:
    out = []
    pending, start = "", 0
    for n, line in enumerate(block.lines, start=block.line + 1):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):  # a command continued on the next line
            pending, start = pending + line.rstrip()[:-1] + " ", start or n
            continue
        raw, n = pending + line.strip(), start or n
        pending, start = "", 0
        m = _COMMENT.search(raw)
        comment = m.group("text").strip() if m else ""
        text = raw[: m.start()].strip() if m else raw.strip()
        code = _EXIT.match(comment)
        out.append(Command(text, int(code.group("code")) if code else 0, n, comment, shlex.split(text)))
    return out


BLOCKS = parse_readme(README.read_text(encoding="utf-8"))
RUNNABLE_BLOCKS = [b for b in BLOCKS if b.runnable]


def test_the_readme_parser_reads_markers_exit_codes_and_outputs() -> None:
    text = ("# T\n\n<!-- runnable -->\n```sh\ncd x\nvelapy a --b c   # exit 2, then\n  # a comment line\n"
            "velapy d  # not an exit 3\n```\n\n<!-- output -->\n```text\nhello\n```\n\n```sh\nvelapy e\n```\n")
    a, b = parse_readme(text)
    assert (a.heading, a.runnable, a.output, b.runnable, b.output) == ("T", True, ["hello"], False, None)
    cmds = commands(a)
    assert [(c.args, c.expected_exit) for c in cmds] == [(["cd", "x"], 0), (["velapy", "a", "--b", "c"], 2),
                                                         (["velapy", "d"], 0)]
    assert cmds[1].line == 6


def test_the_sections_a_newcomer_runs_first_are_runnable() -> None:
    headings = {b.heading for b in RUNNABLE_BLOCKS}
    for section in ("Render", "Many clusters: the plan and the output folder", "Validation", "Review workflow"):
        assert section in headings, f"no runnable block in README section {section!r}"
    review = next(b for b in RUNNABLE_BLOCKS if b.heading == "Review workflow")
    assert commands(review)[0].args == ["cd", "examples/gitops"]
    def_lines = [c.args[:2] for b in RUNNABLE_BLOCKS for c in commands(b)]
    assert ["velapy", "def"] in def_lines


def _resolve(args: list[str]) -> click.Command:
    """The click command an argument list names (its options parsed), or a pytest failure."""
    ctx = cli.main.make_context("velapy", list(args), resilient_parsing=True)
    cmd: click.Command = cli.main
    rest = ctx.protected_args + ctx.args
    while isinstance(cmd, click.Group) and rest:
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"no command {rest[0]!r} in velapy {' '.join(args)}"
        ctx = sub.make_context(rest[0], rest[1:], parent=ctx, resilient_parsing=True)
        cmd, rest = sub, ctx.protected_args + ctx.args if isinstance(sub, click.Group) else []
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for word in args:
        if word.startswith("-") and word not in ("-", "--"):
            assert word.split("=", 1)[0] in known | {"--color", "--help", "-h"}, f"unknown option {word} of {cmd.name}"
    return cmd


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "sh"], ids=lambda b: f"line{b.line}")
def test_every_velapy_line_names_a_real_command(block: Block) -> None:
    for c in commands(block):
        for m in _INVOCATION.finditer(c.text):
            _resolve(m.group("args").split())


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's files (tracked and new, not ignored) in a fresh git repository with origin/main."""
    dest = tmp_path_factory.mktemp("readme") / "velapy"
    dest.mkdir()
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.split(b"\0")
    for rel in filter(None, listed):
        src = ROOT / os.fsdecode(rel)
        if src.is_file():
            target = dest / os.fsdecode(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "clone"],
                 ["update-ref", "refs/remotes/origin/main", "HEAD"]):
        subprocess.run(["git", *args], cwd=dest, check=True, env=env)
    return dest


@pytest.fixture
def in_process(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    yield


def run_command(c: Command, cwd: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    if c.args[0] == "velapy":
        monkeypatch.chdir(cwd)
        res = CliRunner(mix_stderr=False).invoke(cli.main, c.args[1:], prog_name="velapy")
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.stdout, res.stderr
    p = subprocess.run(["bash", "-c", c.text], cwd=cwd, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.usefixtures("in_process")
@pytest.mark.parametrize("block", RUNNABLE_BLOCKS, ids=lambda b: f"line{b.line}-{b.heading.split(':')[0]}")
def test_runnable_blocks_run_as_written(block: Block, clone: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = clone
    last = ""
    try:
        for c in commands(block):
            if c.args[0] == "cd":
                assert len(c.args) == 2, f"README.md:{c.line}: cd takes one folder"
                cwd = (cwd / c.args[1]).resolve()
                assert cwd.is_dir(), f"README.md:{c.line}: no folder {c.args[1]}"
                continue
            code, out, err = run_command(c, cwd, monkeypatch)
            assert code == c.expected_exit, \
                f"README.md:{c.line}: `{c.text}` exited {code}, not {c.expected_exit}:\n{out}{err}"
            assert "\x1b[" not in out + err  # not a terminal: no colour
            last = out + err
    finally:  # an emulator a failed block started in the background (`velapy emulate --background`)
        for pid_file in clone.rglob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            pid_file.unlink()
    if block.output is not None:
        assert last == "\n".join(block.output) + "\n", f"README.md: the output shown after line {block.line} is stale"


def test_the_review_workflow_says_which_project_file_it_uses(clone: Path, in_process: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    apps = clone / "examples" / "gitops" / "apps"
    code, _out, err = run_command(Command("velapy golden check", 0, 0, args=["velapy", "golden", "check"]),
                                  apps, monkeypatch)
    assert code == 0 and err.startswith("note: using ../velapy.yaml\n")
