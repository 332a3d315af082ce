"""The engine and shell completion."""

from __future__ import annotations

import click

from velapy.cli import base
from velapy.cli.base import (
    _run,
    main,
)


@main.command("engine")
def engine_cmd() -> None:
    """Say which CUE engine runs, its version and where it lives.

    An installed velapy installs the embedded engine on first use (this command does it too).
    """

    def go() -> int:
        with base.open_evaluator() as ev:
            click.echo(ev.runner.describe())
        return 0

    _run(go)


_SHELLS = {"bash": "~/.bashrc", "zsh": "~/.zshrc", "fish": "~/.config/fish/completions/velapy.fish"}


@main.command("completion")
@click.argument("shell", type=click.Choice(list(_SHELLS)))
def completion_cmd(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish).

    \b
    bash:  echo 'eval "$(velapy completion bash)"' >> ~/.bashrc
    zsh:   echo 'eval "$(velapy completion zsh)"' >> ~/.zshrc
    fish:  velapy completion fish > ~/.config/fish/completions/velapy.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # click knows all three; a clear message if a future click drops one
        raise click.UsageError(f"click cannot complete {shell}")
    root = click.get_current_context().find_root().command
    click.echo(cls(root, {}, "velapy", "_VELAPY_COMPLETE").source())
# ----------------------------------------------------------------------------------------------
# the executor: apply, resume, status, delete (velapy.execute)

