"""The one exception root of velapy, and the exit codes it maps to.

Every error a user can cause carries a location: a file with line and column, a JSON path inside
the document, and the component/trait/cluster involved. The CLI turns these into one message and an
exit code without a traceback. Exit codes: 0 ok, 1 differences, 2 invalid input, 3 cluster
failure, 4 internal error, 5 environment failure (the machine, not the input: disk full,
permissions, read-only file system, a lock held too long).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_DIFFERENT = 1
EXIT_INVALID = 2
EXIT_CLUSTER = 3
EXIT_INTERNAL = 4
EXIT_ENVIRONMENT = 5


@dataclass(frozen=True)
class Location:
    """Where a problem is: any of file:line:col, a path in the document, and what it belongs to."""

    file: str = ""
    line: int = 0
    column: int = 0
    path: str = ""
    component: str = ""
    trait: str = ""
    cluster: str = ""

    def where(self) -> str:
        """`file:line:col` (as much as is known)."""
        if not self.file:
            return ""
        out = self.file
        if self.line:
            out += f":{self.line}"
            if self.column:
                out += f":{self.column}"
        return out

    def subject(self) -> str:
        """`component web, trait scaler, cluster prod` (as much as is known)."""
        parts = []
        if self.component:
            parts.append(f"component {self.component}")
        if self.trait:
            parts.append(f"trait {self.trait}")
        if self.cluster:
            parts.append(f"cluster {self.cluster}")
        return ", ".join(parts)


# Diagnostic.reason values: what a problem needs, beyond fixing the input
REASON_ENGINE_CRASH = "engine-crash"  # the CUE engine crashed: not the input's fault (exit 4)
REASON_UNKNOWN_DEFINITION = "unknown-definition"  # a type no loaded definition provides (custom / addon)
REASON_NEEDS_INPUT = "needs-input"  # needs more input offline: a -f file (a Workflow document, ...)
REASON_LIVE_CLUSTER = "live-cluster"  # needs a cluster's live objects (ref-objects: --resources DIR offline)
REASON_PROVIDER = "provider"  # needs a KubeVela controller provider (vela/kube, ...), not renderable offline
REASON_CONTROLLER_STEP = "controller-step"  # a custom workflow step only the KubeVela controller runs (render -o)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in the input."""

    message: str
    location: Location = field(default_factory=Location)
    hint: str = ""
    reason: str = ""  # a machine-readable cause (REASON_*), for tools that sort problems; "" = plain input error

    def render(self) -> str:
        """One readable block: `file:line:col: path: message (component x)` plus a hint line."""
        head = []
        where = self.location.where()
        if where:
            head.append(where)
        if self.location.path:
            head.append(self.location.path)
        text = ": ".join([*head, self.message]) if head else self.message
        subject = self.location.subject()
        if subject:
            text += f" ({subject})"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class VelapyError(Exception):
    """Root of every error velapy raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, diagnostics: list[Diagnostic] | str, location: Location | None = None) -> None:
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics, location or Location())]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        super().__init__(self.render())

    def render(self) -> str:
        """All diagnostics, one block each."""
        return "\n".join("error: " + d.render() for d in self.diagnostics)


class InputError(VelapyError):
    """The user's input is invalid: YAML, schema, definitions, CUE, policies (exit 2)."""

    exit_code = EXIT_INVALID


class EngineError(VelapyError):
    """The CUE engine could not be started or answered nonsense (exit 4)."""

    exit_code = EXIT_INTERNAL


class ClusterError(VelapyError):
    """A cluster refused or failed an operation (exit 3)."""

    exit_code = EXIT_CLUSTER


class EnvironmentFailure(VelapyError):
    """The machine failed velapy, not the input: disk full, permission denied, read-only file
    system, a lock another velapy holds too long (exit 5)."""

    exit_code = EXIT_ENVIRONMENT


def raise_problems(problems: Sequence[Diagnostic]) -> None:
    """Raise every collected problem at once (duplicates dropped, order kept), or return if none.

    An engine crash among them makes it an EngineError (exit 4: not the input's fault); anything
    else is the input's (InputError, exit 2).
    """
    if not problems:
        return
    unique = list(dict.fromkeys(problems))
    if any(p.reason == REASON_ENGINE_CRASH for p in unique):
        raise EngineError(unique)
    raise InputError(unique)
