"""`velapy emulate`: a cluster inventory file → emulated clusters served in the foreground.

Reads the inventory with velapy's own loader (the hub `local` included), starts one emulated
cluster per entry on 127.0.0.1 (its `version` served at /version), writes a kubeconfig with one
context per cluster, prints one line per cluster and a ready line, and serves until SIGINT or
SIGTERM; then it stops the servers and removes the kubeconfig it wrote. It never overwrites an
existing file: the kubeconfig is deleted on exit, so pointing it at a real one would lose it.

Faults for rehearsing a bad day: `--fault SPEC` (`parse_fault`: comma-separated key=value, e.g.
`cluster=prod-beijing,method=PATCH,status=503,times=2`), `--down CLUSTER` (its port is reserved and
the kubeconfig names it, but nothing answers), and, while serving, one command per line on standard
input: `stop CLUSTER`, `start CLUSTER`, `fault SPEC`, `clear CLUSTER`.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

from velapy.errors import EXIT_OK, ClusterError, Diagnostic, InputError, Location
from velapy.kube.emulator.auth import RbacError
from velapy.kube.emulator.fleet import Fleet
from velapy.kube.emulator.server import CRD_DELAY, NAMESPACE_DELAY, Fault
from velapy.kube.emulator.tls import TlsError
from velapy.load.clusters import load_inventory

SERVE_JOURNAL = 1_000  # requests each served cluster remembers in memory (nobody reads them; see --audit-log)


_FAULT_KEYS = ("cluster", "method", "path", "user", "after", "times", "status", "retry-after", "delay", "drop",
               "commit")


def parse_fault(spec: str, clusters: Sequence[str]) -> tuple[list[str], Fault]:
    """`cluster=NAME,method=PATCH,status=503,times=2` → (the clusters it applies to, the Fault). Keys:
    cluster (all when omitted), method, path (a regular expression searched in the URL path), user,
    after, times, status, retry-after, delay (seconds), drop and commit (true/false)."""
    values: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in _FAULT_KEYS:
            raise InputError(f"--fault {spec!r}: {part.strip()!r} is not key=value with a key of "
                             f"{', '.join(_FAULT_KEYS)}")
        values[key] = value.strip()
    names = [values["cluster"]] if "cluster" in values else list(clusters)
    for name in names:
        if name not in clusters:
            raise InputError(f"--fault {spec!r}: no cluster {name} in the inventory (clusters: "
                             f"{', '.join(clusters)})")

    def number(key: str, kind: type[int] | type[float]) -> int | float | None:
        if key not in values:
            return None
        try:
            n = kind(values[key])
        except ValueError:
            raise InputError(f"--fault {spec!r}: {key} must be a {'whole ' if kind is int else ''}number, not "
                             f"{values[key]!r}") from None
        if n < 0:
            raise InputError(f"--fault {spec!r}: {key} must be zero or more")
        return n

    def flag(key: str) -> bool:
        text = values.get(key, "false").lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise InputError(f"--fault {spec!r}: {key} must be true or false, not {values[key]!r}")
        return text in ("true", "1", "yes")

    status, times, after = number("status", int), number("times", int), number("after", int)
    retry, delay = number("retry-after", int), number("delay", float)
    if status is not None and not 400 <= status <= 599:
        raise InputError(f"--fault {spec!r}: status must be an HTTP error code (400-599)")
    fault = Fault(method=values.get("method", "").upper() or None, path=values.get("path") or None,
                  user=values.get("user") or None, after=int(after or 0),
                  times=int(times) if times is not None else None,
                  status=int(status) if status is not None else None,
                  retry_after=int(retry) if retry is not None else None, delay=delay, drop=flag("drop"),
                  commit=flag("commit"))
    if fault.status is None and not fault.drop and not fault.delay:
        raise InputError(f"--fault {spec!r}: say what happens: status=CODE, drop=true or delay=SECONDS")
    return names, fault


def control(fleet: Fleet, line: str, out: TextIO) -> None:
    """One command typed while serving: stop/start/clear CLUSTER or fault SPEC (errors are printed)."""
    words = line.split(None, 1)
    if not words:
        return
    verb, arg = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    try:
        if verb == "fault":
            names, fault = parse_fault(arg, fleet.names())
            for name in names:
                fleet[name].add_fault(dataclasses.replace(fault))
            out.write(f"fault added on {', '.join(names)}\n")
        elif verb in ("stop", "start", "clear"):
            if arg not in fleet.names():
                raise InputError(f"no cluster {arg!r} (clusters: {', '.join(fleet.names())})")
            c = fleet[arg]
            if verb == "stop":
                c.stop()
                out.write(f"{arg}: stopped (connections are refused until `start {arg}`)\n")
            elif verb == "start":
                c.start()
                out.write(f"{arg}: serving again at {c.url}\n")
            else:
                c.clear_faults()
                out.write(f"{arg}: faults cleared\n")
        else:
            raise InputError(f"unknown command {verb!r}: stop CLUSTER, start CLUSTER, fault SPEC, clear CLUSTER")
    except InputError as e:
        out.write(f"error: {e.diagnostics[0].message}\n")
    out.flush()


def serve(inventory: str, kubeconfig: str, out: TextIO, *, audit_log: str = "", rbac: str = "",
          ready_after: float = 0.0, stop: threading.Event | None = None, hold_images: Sequence[str] = (),
          faults: Sequence[str] = (), down: Sequence[str] = (), commands: TextIO | None = None,
          crd_delay: float = CRD_DELAY, namespace_delay: float = NAMESPACE_DELAY) -> int:
    """Serve the fleet of `inventory` until a signal (or `stop`) arrives; the exit code. `faults` are
    --fault specs, `down` clusters that do not answer, `commands` a stream of control lines (stdin)."""
    inv = load_inventory(inventory)
    target = Path(kubeconfig)
    if target.exists():
        raise InputError([Diagnostic(
            f"{kubeconfig} already exists", Location(file=kubeconfig),
            "the emulator writes a fresh kubeconfig and deletes it when it stops; give a path that does not exist "
            "(never your real kubeconfig)")])
    for option, value in (("--ready-after", ready_after), ("--crd-delay", crd_delay),
                          ("--namespace-delay", namespace_delay)):
        if value < 0:
            raise InputError(f"{option} must be zero or more seconds")
    parsed = [parse_fault(spec, inv.names()) for spec in faults]
    for name in down:
        if name not in inv.names():
            raise InputError(f"--down {name}: no cluster {name} in the inventory (clusters: {', '.join(inv.names())})")
    try:
        fleet = Fleet(inv.names(), rbac=rbac or None, ready_after=ready_after, audit_log=audit_log or None,
                      crd_delay=crd_delay, namespace_delay=namespace_delay, journal_limit=SERVE_JOURNAL,
                      versions={c.name: c.version for c in inv.clusters if c.version}, hold_images=hold_images)
    except RbacError as e:
        raise InputError([Diagnostic(str(e), Location(file=rbac))]) from None
    except OSError as e:
        raise InputError([Diagnostic(f"cannot open the audit log: {e.strerror}", Location(file=audit_log))]) from None
    except TlsError as e:
        raise ClusterError(str(e)) from None
    done = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        fleet.start()
        for names, fault in parsed:
            for name in names:
                fleet[name].add_fault(dataclasses.replace(fault))
        for name in down:
            fleet[name].stop()  # its port stays in the kubeconfig: clients get "connection refused"
        fleet.write_kubeconfig(target)
        width = max(len(n) for n in fleet.names())
        for c in fleet:
            state = "  (down)" if c.name in down else ""
            out.write(f"{c.name:<{width}}  {c.url}{state}\n")
        out.write(f"ready: {len(fleet)} emulated clusters; use kubectl --kubeconfig {target} --context "
                  f"<cluster> (Ctrl-C to stop)\n")
        out.flush()
        if commands is not None:
            def read() -> None:
                for line in commands:
                    if done.is_set():
                        return
                    control(fleet, line, out)

            threading.Thread(target=read, name="emulate-commands", daemon=True).start()
        while not done.wait(0.5):
            pass
    finally:
        fleet.stop()
        target.unlink(missing_ok=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return EXIT_OK


def serve_in_background(args: Sequence[str], kubeconfig: str, out: TextIO, pid_file: str = "",
                        wait: float = 30.0) -> int:
    """Start `velapy emulate ARGS` as a process of its own (a new session, so it outlives this one),
    print its lines once it is ready, write its pid (to `pid_file` too), and return; `kill PID`
    stops it cleanly (its kubeconfig is removed)."""
    if Path(kubeconfig).exists():
        raise InputError([Diagnostic(f"{kubeconfig} already exists", Location(file=kubeconfig),
                                     "the emulator writes a fresh kubeconfig and deletes it when it stops")])
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, "-m", "velapy", "emulate", *args], stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL, start_new_session=True, text=True)
        assert proc.stdout is not None
        deadline = time.monotonic() + wait
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready:"):
                proc.stdout.close()
                out.write("".join(lines))
                out.write(f"pid {proc.pid}: stop it with kill {proc.pid}\n")
                out.flush()
                if pid_file:
                    Path(pid_file).write_text(f"{proc.pid}\n", encoding="utf-8")
                return EXIT_OK
        if proc.poll() is None:
            proc.terminate()
        proc.wait(10)
        err.seek(0)
        said = err.read().decode("utf-8", "replace").strip()
    raise ClusterError(f"the emulator did not start{f': {said}' if said else ''}")


