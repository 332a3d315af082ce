"""Command line → one library call → text on stdout and an exit code. The only click importer.

Errors velapy raises on purpose print as located messages (never a traceback) and map to the
exit codes of `velapy.errors`: 0 ok, 1 differences, 2 invalid input, 3 cluster failure, 4 internal,
5 environment failure (disk, permissions, a folder locked too long).

One module per command group, each command a thin shell over one library call:
`render` (render, plan, validate, diff, golden), `definitions` (def ...), `fleet` (apply, resume,
status, delete), `lifecycle` (ls, history, terminate, suspend, restart, rollback), `emulator`
(emulate), `tools` (engine, completion); `base` holds the root group and the options they share.
"""

from velapy.cli import definitions, emulator, fleet, lifecycle, render, tools
from velapy.cli.base import main

__all__ = ["definitions", "emulator", "fleet", "lifecycle", "main", "render", "tools"]
