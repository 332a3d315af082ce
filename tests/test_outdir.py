"""The output folder as a contract (issue 11, items 1-4): velapy replaces only what it wrote,
writes atomically as a whole, under a lock, and a killed writer leaves old or new output and
nothing git would add.

Writers that must run concurrently or be killed are real processes (`_WRITER` below); they
stop at a named stage through `write_folder`'s `pause` hook and say so with a file, so no test
depends on timing.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from velapy import cli
from velapy.bundle import outdir
from velapy.bundle.outdir import MANIFEST, WORK_DIR, lock_folder, manifest_text, recover, write_folder
from velapy.cue.engine import Evaluator
from velapy.errors import EnvironmentFailure, InputError

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "demo"


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones included), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


def output(label: str, n: int = 3) -> dict[str, str]:
    """A fake rendered folder whose every file names `label` (so a mix is visible)."""
    files = {"plan.yaml": f"app: {label}\n"}
    for i in range(n):
        files[f"clusters/c{i % 2}/ns/obj{i}.yaml"] = f"from: {label}\n"
    files["clusters/c0/kustomization.yaml"] = f"k: {label}\n"
    return files


def with_manifest(files: dict[str, str]) -> dict[str, str]:
    return {**files, MANIFEST: manifest_text(files)}


# ------------------------------------------------------------------------------------------
# 1. ownership


def test_a_second_write_replaces_only_what_the_first_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_folder(out, output("one", 5))
    assert tree(out) == with_manifest(output("one", 5))
    write_folder(out, output("two", 2))  # objects 2..4 are gone: their files go too
    assert tree(out) == with_manifest(output("two", 2))
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no work area left behind


@pytest.mark.parametrize("foreign, shown", [
    ("clusters/c0/ns/mine.yaml", "clusters/c0/ns/mine.yaml"),
    ("clusters/other/notes.txt", "clusters/other/notes.txt"),
])
def test_a_user_file_among_velapys_is_refused_and_survives(tmp_path: Path, foreign: str, shown: str) -> None:
    out = tmp_path / "out"
    write_folder(out, output("one"))
    (out / foreign).parent.mkdir(parents=True, exist_ok=True)
    (out / foreign).write_text("user data\n")
    before = tree(out)
    with pytest.raises(InputError) as exc:
        write_folder(out, output("two"))
    assert exc.value.exit_code == 2
    assert exc.value.diagnostics[0].location.file == str(out / shown)
    assert "velapy did not write this file" in exc.value.render()
    assert tree(out) == before


def test_a_user_file_named_clusters_or_plan_is_refused(tmp_path: Path) -> None:
    for name in ("clusters", "plan.yaml"):
        out = tmp_path / name.replace(".", "_")
        out.mkdir()
        (out / name).write_text("mine\n")
        with pytest.raises(InputError) as exc:
            write_folder(out, output("one"))
        assert exc.value.diagnostics[0].location.file == str(out / name)
        assert (out / name).read_text() == "mine\n" and sorted(os.listdir(out)) == [name]
        # --force does not change that: the file is not velapy's
        with pytest.raises(InputError):
            write_folder(out, output("one"), force=True)
        assert (out / name).read_text() == "mine\n"


def test_a_plan_yaml_that_is_a_folder_fails_before_anything_is_swapped(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_folder(out, output("one"))
    (out / "plan.yaml").unlink()
    (out / "plan.yaml").mkdir()
    before = tree(out)
    with pytest.raises(InputError) as exc:
        write_folder(out, output("two"))
    assert exc.value.diagnostics[0].location.file == str(out / "plan.yaml")
    assert tree(out) == before and (out / "plan.yaml").is_dir()


def test_flux_repository_with_dash_o_dot(tmp_path: Path) -> None:
    """`-o .` in a Flux-style repository: the user's clusters/production/flux-system.yaml survives."""
    repo = tmp_path / "repo"
    flux = repo / "clusters" / "production" / "flux-system.yaml"
    flux.parent.mkdir(parents=True)
    flux.write_text("kind: Kustomization\n")
    (repo / "app.yaml").write_text("app\n")
    for force in (False, True):
        with pytest.raises(InputError) as exc:
            write_folder(repo, output("one"), force=force)
        assert exc.value.diagnostics[0].location.file == str(flux)
        assert "--force" not in exc.value.render()  # it would not help: the file is not velapy's
    assert tree(repo) == {"app.yaml": "app\n", "clusters/production/flux-system.yaml": "kind: Kustomization\n"}


def test_user_files_beside_the_output_are_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OUT holding the user's files at the top (the app itself, `-o .`): entries swap in place."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.yaml").write_text("app\n")
    monkeypatch.chdir(repo)
    write_folder(".", output("one", 4))
    write_folder(".", output("two", 1))
    assert tree(repo) == {"app.yaml": "app\n", **with_manifest(output("two", 1))}


def test_force_takes_over_an_old_velapy_folder_but_never_deletes_foreign_files(tmp_path: Path,
                                                                                 evaluator: Evaluator) -> None:
    from velapy.bundle.emit import render_folder
    from velapy.pipeline import Inputs, compile_app

    plan = compile_app(Inputs(str(DEMO / "app.yaml"), clusters=str(DEMO / "clusters.yaml")), evaluator)
    files = render_folder(plan)
    out = tmp_path / "old-velapy"
    for rel, text in files.items():  # what an older velapy wrote: no manifest
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    with pytest.raises(InputError) as exc:
        write_folder(out, files)
    assert "--force takes it over" in exc.value.render()
    (out / "clusters" / "extra.txt").write_text("mine\n")
    with pytest.raises(InputError) as exc:
        write_folder(out, files, force=True)
    assert exc.value.diagnostics[0].location.file == str(out / "clusters" / "extra.txt")
    (out / "clusters" / "extra.txt").unlink()
    write_folder(out, files, force=True)
    assert tree(out) == with_manifest(files)


def test_a_manifest_pointing_outside_is_never_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_folder(out, output("one"))
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    (out / MANIFEST).write_text(manifest_text(["plan.yaml", "../victim.txt"]))
    with pytest.raises(InputError, match="not a path inside this folder"):
        write_folder(out, output("two"))
    assert victim.read_text() == "keep\n"


@pytest.fixture
def cli_engine(evaluator: Evaluator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.base, "open_evaluator", lambda **_kw: nullcontext(evaluator))


def run(*args: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(cli.main, list(args), catch_exceptions=False)


def test_cli_refuses_with_exit_2_naming_the_path(tmp_path: Path, cli_engine: None) -> None:
    out = tmp_path / "out"
    args = ["render", str(DEMO / "app.yaml"), "--clusters", str(DEMO / "clusters.yaml"), "-o", str(out)]
    assert run(*args).exit_code == 0
    (out / "clusters" / "local").mkdir(exist_ok=True)
    (out / "clusters" / "local" / "secret-notes.yaml").write_text("mine\n")
    res = run(*args)
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {out}/clusters/local/secret-notes.yaml: velapy did not write this file")
    assert (out / "clusters" / "local" / "secret-notes.yaml").read_text() == "mine\n"


# ------------------------------------------------------------------------------------------
# 5 (the machine's part). a failing disk is not invalid input


def test_a_full_disk_is_an_environment_failure_and_the_old_output_stays(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    write_folder(out, output("one"))
    before = tree(out)

    def full(base: str, files: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", base)

    monkeypatch.setattr(outdir, "_write_tree", full)
    with pytest.raises(EnvironmentFailure) as exc:
        write_folder(out, output("two"))
    assert exc.value.exit_code == 5 and "no space left on the device" in exc.value.render()
    assert tree(out) == before and sorted(os.listdir(tmp_path)) == ["out"]


def test_a_read_only_place_is_an_environment_failure(tmp_path: Path) -> None:
    if not Path("/proc/self").is_dir():
        pytest.skip("needs /proc")
    with pytest.raises(EnvironmentFailure) as exc:
        write_folder("/proc/self/velapy-out", output("one"))
    assert exc.value.exit_code == 5


# ------------------------------------------------------------------------------------------
# 2-4. real writer processes: locked, atomic, crash-safe

_WRITER = r"""
import os, sys, time
from velapy.bundle.outdir import write_folder
out, label, stage, signal_file = sys.argv[1:5]
files = {"plan.yaml": f"app: {label}\n"}
for i in range(int(sys.argv[5])):
    files[f"clusters/c{i % 2}/ns/obj{i}.yaml"] = f"from: {label}\n"
files["clusters/c0/kustomization.yaml"] = f"k: {label}\n"

def pause(at):
    if at == stage:
        open(signal_file, "w").close()
        while not os.path.exists(signal_file + ".go"):
            time.sleep(0.01)

def waiting(text):
    print("WAITING", text, flush=True)
    open(signal_file + ".waiting", "w").close()

write_folder(out, files, pause=pause, on_wait=waiting, lock_timeout=float(os.environ.get("T", "60")))
print("DONE", flush=True)
"""


def writer(out: Path, label: str, stage: str, signal_file: Path, n: int = 3,
           timeout: str = "60") -> subprocess.Popen[str]:
    env = {**os.environ, "T": timeout, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(out), label, stage, str(signal_file), str(n)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    """Until the writer reached its stage (or died: then fail with what it said)."""
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"writer exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.01)


def test_a_second_writer_waits_for_the_first_and_never_mixes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_folder(out, output("zero"))
    a = writer(out, "A", "written", tmp_path / "a")
    wait_for(tmp_path / "a", a)  # A holds the lock with its new tree written, nothing swapped
    b = writer(out, "B", "never", tmp_path / "b")
    wait_for(tmp_path / "b.waiting", b)  # B found the folder locked and waits
    assert tree(out) == with_manifest(output("zero"))
    (tmp_path / "a.go").touch()
    assert a.wait() == 0 and b.wait() == 0
    assert tree(out) == with_manifest(output("B"))  # B's plan with B's clusters, nothing of A's


def test_a_second_writer_gives_up_clearly(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = writer(out, "A", "written", tmp_path / "a")
    wait_for(tmp_path / "a", a)
    with pytest.raises(EnvironmentFailure) as exc:
        write_folder(out, output("B"), lock_timeout=0)
    assert exc.value.exit_code == 5 and "another velapy is writing this folder" in exc.value.render()
    (tmp_path / "a.go").touch()
    assert a.wait() == 0
    assert tree(out) == with_manifest(output("A"))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, check=True, env=env, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    yield repo


def test_kill_9_before_the_swap_leaves_the_old_output_and_nothing_to_commit(repo: Path) -> None:
    out = repo / "out"
    write_folder(out, output("old"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    w = writer(out, "new", "written", repo.parent / "sig", n=400)
    wait_for(repo.parent / "sig", w)
    w.send_signal(signal.SIGKILL)
    w.wait()
    assert tree(out) == with_manifest(output("old"))
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""  # the temporary is git-ignored
    assert (repo / WORK_DIR).is_dir()  # ... and it is there, holding the new tree
    write_folder(out, output("next"))  # the next write cleans it up
    assert not (repo / WORK_DIR).exists()
    assert tree(out) == with_manifest(output("next"))


def test_kill_9_inside_an_in_place_swap_is_completed_by_the_next_writer(repo: Path) -> None:
    """OUT = the repository itself (user files at the top): a kill between the exchange of
    clusters/ and of plan.yaml is finished from the journal by the next velapy."""
    (repo / "app.yaml").write_text("app\n")
    write_folder(repo, output("old"))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "old")
    w = writer(repo, "new", "swapped clusters", repo.parent / "sig")
    wait_for(repo.parent / "sig", w)
    w.send_signal(signal.SIGKILL)
    w.wait()
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert WORK_DIR not in status  # the temporaries are git-ignored
    assert (repo / "plan.yaml").read_text() == "app: old\n"  # killed between clusters/ and plan.yaml
    assert (repo / "clusters/c0/kustomization.yaml").read_text() == "k: new\n"
    lock = lock_folder(str(repo), 5)
    try:
        recover(str(repo))  # what the next write (or `velapy render -o`) does first
    finally:
        lock.release()
    assert tree(repo) == {"app.yaml": "app\n", **with_manifest(output("new"))}
    assert not (repo / WORK_DIR).exists()


def test_force_adopts_files_it_would_write_unchanged_but_nothing_else(tmp_path: Path) -> None:
    """An older velapy's folder with a file its plan does not list (e.g. written by an emitter):
    --force takes it over only when velapy would write the very same bytes there."""
    out = tmp_path / "out"
    files = {**output("one"), "flux/kustomization.yaml": "kind: Kustomization\n"}
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    changed = {**files, "flux/kustomization.yaml": "kind: Kustomization  # new\n"}
    with pytest.raises(InputError) as exc:
        write_folder(out, changed, force=True)
    assert exc.value.diagnostics[0].location.file == str(out / "flux/kustomization.yaml")
    write_folder(out, files, force=True)
    assert tree(out) == with_manifest(files)
    write_folder(out, changed)  # now velapy's: replaced without --force
    assert tree(out) == with_manifest(changed)
