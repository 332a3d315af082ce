"""Output for people: when velapy colours (--color, NO_COLOR, FORCE_COLOR, a terminal), what, and completion."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from velapy import cli
from velapy.colour import BOLD, GREEN, RED, YELLOW, paint, plain, style, wanted
from velapy.cue.engine import Evaluator

ROOT = Path(__file__).resolve().parent.parent
BAD_APP = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata: {name: a}\nspec:\n  components:\n" \
          "    - name: web\n      type: webservis\n"


@pytest.mark.parametrize(("mode", "tty", "env", "expected"), [
    ("auto", True, {}, True),
    ("auto", False, {}, False),
    ("auto", True, {"NO_COLOR": "1"}, False),
    ("auto", True, {"NO_COLOR": ""}, True),  # NO_COLOR counts only when set to something
    ("auto", False, {"FORCE_COLOR": "1"}, True),
    ("auto", False, {"FORCE_COLOR": "0"}, False),
    ("auto", True, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
    ("always", False, {"NO_COLOR": "1"}, True),
    ("never", True, {"FORCE_COLOR": "1"}, False),
])
def test_when_to_colour(mode: str, tty: bool, env: dict[str, str], expected: bool) -> None:
    assert wanted(mode, tty, env) is expected


def test_messages_colour_only_their_prefix() -> None:
    text = "error: app.yaml:3:4: spec: bad\n  hint: did you mean x?\nwarning: w\nnote: n\nplain error: no"
    out = paint(text, "messages")
    assert plain(out) == text
    assert out.split("\n") == [style("error:", BOLD, RED) + " app.yaml:3:4: spec: bad",
                               "  " + style("hint:", "36") + " did you mean x?",
                               style("warning:", BOLD, YELLOW) + " w", style("note:", "2") + " n", "plain error: no"]


def test_changes_unified_and_plan_gates() -> None:
    changes = ("clusters/p1  Service shop/web  added\nclusters/p1  ConfigMap shop/b  removed\n"
               "clusters/p1  Deployment shop/web  spec.replicas: 3 → 4\n+ Deployment a\n- Secret b\n~ Service c\n"
               "fresh    shop  golden/shop\nstale    orders  golden/orders  (clusters: p1)\n"
               "2 clusters: 1 added, 1 removed, 1 changed objects\n")
    out = paint(changes, "changes").split("\n")
    assert out[0] == style("clusters/p1  Service shop/web  added", GREEN)
    assert out[1] == style("clusters/p1  ConfigMap shop/b  removed", RED)
    assert out[2] == style("clusters/p1  Deployment shop/web  spec.replicas: 3 → 4", YELLOW)
    assert out[3:6] == [style("+ Deployment a", GREEN), style("- Secret b", RED), style("~ Service c", YELLOW)]
    assert out[6] == style("fresh", BOLD, GREEN) + "    shop  golden/shop"
    assert out[7].startswith(style("stale", BOLD, RED))
    assert out[8] == "2 clusters: 1 added, 1 removed, 1 changed objects"
    uni = paint("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a: 1\n+a: 2\n b: 3", "unified").split("\n")
    assert uni[3] == style("-a: 1", RED) and uni[4] == style("+a: 2", GREEN) and uni[5] == " b: 3"
    tree = "├── 2 approve [suspend]  waits until resumed\n├── 3 go [deploy]  policies: p"
    assert paint(tree, "plan") == ("├── 2 approve [suspend]  " + style("waits until resumed", BOLD, YELLOW)
                                   + "\n├── 3 go [deploy]  policies: p")


def _invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli.main, args, env=env, catch_exceptions=False)


def test_the_cli_colours_errors_only_when_asked(tmp_path: Path) -> None:
    app = tmp_path / "app.yaml"
    app.write_text(BAD_APP)
    auto = _invoke(["validate", str(app)], env={"NO_COLOR": None, "FORCE_COLOR": None})  # not a terminal
    assert auto.exit_code == 2 and "\x1b[" not in auto.stderr and auto.stderr.startswith("error: ")
    always = _invoke(["--color=always", "validate", str(app)], env={"NO_COLOR": "1"})
    assert always.exit_code == 2 and always.stderr.startswith(style("error:", BOLD, RED) + " ")
    assert plain(always.stderr) == auto.stderr
    forced = _invoke(["validate", str(app)], env={"FORCE_COLOR": "1", "NO_COLOR": None})
    assert forced.stderr == always.stderr
    never = _invoke(["--color=never", "validate", str(app)], env={"FORCE_COLOR": "1"})
    assert never.stderr == auto.stderr
    bad = _invoke(["--color=sometimes", "validate", str(app)])
    assert bad.exit_code == 2 and "'sometimes' is not one of 'auto', 'always', 'never'" in bad.stderr


def test_the_plan_tree_colours_its_gates_but_machine_formats_never(evaluator: Evaluator,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))
    demo = ROOT / "examples" / "demo"
    args = ["plan", str(demo / "app.yaml"), "--clusters", str(demo / "clusters.yaml")]
    tree = _invoke(["--color=always", *args])
    assert tree.exit_code == 0 and style("waits until resumed", BOLD, YELLOW) in tree.stdout
    yaml_out = _invoke(["--color=always", *args, "--format", "yaml"])
    assert yaml_out.exit_code == 0 and "\x1b[" not in yaml_out.stdout


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F _velapy_completion velapy"),
                                               ("zsh", "#compdef velapy"),
                                               ("fish", "complete --no-files --command velapy")])
def test_completion_scripts(shell: str, marker: str) -> None:
    res = _invoke(["completion", shell])
    assert res.exit_code == 0 and marker in res.stdout and f"_VELAPY_COMPLETE={shell}_complete" in res.stdout


def test_completion_completes_commands_and_rejects_other_shells() -> None:
    res = CliRunner(mix_stderr=False).invoke(cli.main, [], prog_name="velapy",
                                             env={"_VELAPY_COMPLETE": "bash_complete", "COMP_WORDS": "velapy gol",
                                                  "COMP_CWORD": "1"})
    assert res.stdout == "plain,golden\n"
    assert _invoke(["completion", "powershell"]).exit_code == 2


def _on_a_terminal(args: list[str], env: dict[str, str]) -> str:
    """What velapy writes to stderr when stderr is a terminal (a pseudo-terminal here)."""
    leader, follower = pty.openpty()
    try:
        subprocess.run([sys.executable, "-m", "velapy", *args], stdout=subprocess.DEVNULL, stderr=follower,
                       env=env, cwd=ROOT, check=False, timeout=120)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal is closed and drained
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


def test_a_real_terminal_gets_colour_unless_no_color() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    args = ["validate", "examples/mistakes/app.yaml"]
    coloured = _on_a_terminal(args, env)
    assert style("error:", BOLD, RED) in coloured and style("hint:", "36") in coloured
    assert "\x1b[" not in _on_a_terminal(args, {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in _on_a_terminal(["--color=never", *args], env)
