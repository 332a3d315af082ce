"""velapy.review.gitrev: files and folders as they were at a git revision → a temporary copy.

Each test builds a small repository under tmp_path with the real `git` (a few milliseconds per
call; no engine, no network).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from velapy.errors import EXIT_INVALID, InputError
from velapy.review.gitrev import checkout_paths, repo_root

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True,
                          env={**os.environ, **GIT_ENV})
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with two commits: `v1` (app.yaml, defs/a.cue, defs/sub/b.cue) and HEAD, which
    changes app.yaml, removes defs/sub/b.cue and adds clusters.yaml."""
    root = tmp_path / "repo"
    (root / "defs" / "sub").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "app.yaml").write_text("version: 1\n")
    (root / "defs" / "a.cue").write_text("a: 1\n")
    (root / "defs" / "sub" / "b.cue").write_text("b: 1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    git(root, "tag", "v1")
    (root / "app.yaml").write_text("version: 2\n")
    (root / "defs" / "sub" / "b.cue").unlink()
    (root / "clusters.yaml").write_text("clusters: []\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "two")
    (root / "app.yaml").write_text("version: 3 (not committed)\n")
    return root


def test_repo_root_from_a_file_a_folder_and_a_path_that_is_gone(repo: Path) -> None:
    top = os.path.realpath(repo)
    assert repo_root(str(repo / "app.yaml")) == top
    assert repo_root(str(repo / "defs")) == top
    assert repo_root(str(repo / "defs" / "sub")) == top
    assert repo_root(str(repo / "defs" / "gone" / "x.yaml")) == top  # asks from the nearest existing parent


def test_repo_root_through_a_symlink_is_the_real_path(repo: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(repo)
    assert repo_root(str(link / "app.yaml")) == os.path.realpath(repo)


def test_outside_a_repository_is_a_located_input_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "app.yaml").write_text("x: 1\n")
    with pytest.raises(InputError) as info:
        repo_root(str(plain / "app.yaml"))
    (d,) = info.value.diagnostics
    assert info.value.exit_code == EXIT_INVALID
    assert (d.message, d.location.file) == ("not inside a git repository", str(plain / "app.yaml"))
    assert "git work tree" in d.hint


def test_files_and_folders_are_copied_as_they_were_at_the_revision(repo: Path, tmp_path: Path) -> None:
    root = repo_root(str(repo))
    out = tmp_path / "copy"
    asked = [str(repo / "app.yaml"), str(repo / "defs")]
    snap = checkout_paths(root, "v1", asked, str(out))
    assert (snap.revision, snap.folder, snap.missing) == ("v1", str(out), ())
    assert snap.copies == {asked[0]: str(out / "app.yaml"), asked[1]: str(out / "defs")}
    assert (out / "app.yaml").read_text() == "version: 1\n"  # the revision, not the work tree
    assert (out / "defs" / "sub" / "b.cue").read_text() == "b: 1\n"  # gone from HEAD, there at v1
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == \
        ["app.yaml", "defs/a.cue", "defs/sub/b.cue"]  # nothing else of the repository


def test_paths_missing_at_the_revision_are_reported_not_invented(repo: Path, tmp_path: Path) -> None:
    root = repo_root(str(repo))
    out = tmp_path / "copy"
    asked = [str(repo / "clusters.yaml"), str(repo / "defs" / "sub"), str(repo / "app.yaml")]
    snap = checkout_paths(root, "HEAD", asked, str(out))
    assert snap.missing == (asked[1],)  # defs/sub was removed in HEAD (git keeps no empty folders)
    assert set(snap.copies) == {asked[0], asked[2]}
    assert (out / "app.yaml").read_text() == "version: 2\n"
    assert not (out / "defs").exists()
    old = checkout_paths(root, "v1", asked, str(tmp_path / "old"))
    assert old.missing == (asked[0],) and not (tmp_path / "old" / "clusters.yaml").exists()


def test_nothing_present_at_the_revision_copies_nothing(repo: Path, tmp_path: Path) -> None:
    snap = checkout_paths(repo_root(str(repo)), "v1", [str(repo / "clusters.yaml")], str(tmp_path / "copy"))
    assert snap.copies == {} and snap.missing == (str(repo / "clusters.yaml"),)
    assert not (tmp_path / "copy").exists()


def test_a_folder_name_is_not_a_prefix_match(repo: Path, tmp_path: Path) -> None:
    (repo / "def").mkdir()  # `def` must not count as present because `defs/` is
    snap = checkout_paths(repo_root(str(repo)), "v1", [str(repo / "def")], str(tmp_path / "copy"))
    assert snap.missing == (str(repo / "def"),)


def test_an_unknown_revision_is_a_located_error_with_a_hint(repo: Path, tmp_path: Path) -> None:
    root = repo_root(str(repo))
    for rev in ("no-such-branch", "v1:app.yaml"):  # the second names a file, not a commit
        with pytest.raises(InputError) as info:
            checkout_paths(root, rev, [str(repo / "app.yaml")], str(tmp_path / "copy"))
        (d,) = info.value.diagnostics
        assert info.value.exit_code == EXIT_INVALID
        assert (d.message, d.location.file) == (f"unknown git revision {rev!r}", root)
        assert "--git-base origin/main" in d.hint


def test_paths_outside_the_repository_are_refused_all_at_once(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("x: 1\n")
    sibling = tmp_path / "repo-other"  # shares the prefix `repo` but is another folder
    sibling.mkdir()
    root = repo_root(str(repo))
    with pytest.raises(InputError) as info:
        checkout_paths(root, "HEAD", [str(outside), str(repo / "app.yaml"), str(sibling)], str(tmp_path / "copy"))
    assert [(d.message, d.location.file) for d in info.value.diagnostics] == [
        (f"{outside} is outside the git repository {root}", str(outside)),
        (f"{sibling} is outside the git repository {root}", str(sibling))]
    assert not (tmp_path / "copy").exists()


def test_a_path_through_a_symlink_into_the_repository_is_inside(repo: Path, tmp_path: Path) -> None:
    link = tmp_path / "into"
    link.symlink_to(repo / "defs")
    snap = checkout_paths(repo_root(str(repo)), "v1", [str(link)], str(tmp_path / "copy"))
    assert snap.copies == {str(link): str(tmp_path / "copy" / "defs")}
    assert (tmp_path / "copy" / "defs" / "a.cue").read_text() == "a: 1\n"


def test_without_git_installed_the_error_says_so(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repo / "no-bin"))
    for call in (lambda: repo_root(str(repo)),
                 lambda: checkout_paths(str(repo), "HEAD", [str(repo / "app.yaml")], str(repo / "copy"))):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.exit_code == EXIT_INVALID
        assert [(d.message, d.location.file) for d in info.value.diagnostics] == \
            [("--git-base needs git, and git is not installed", str(repo))]
