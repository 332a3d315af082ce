"""`velapy emulate`: a cluster inventory file → emulated clusters served in the foreground.

Reads the inventory with velapy's own loader (the hub `local` included), starts one emulated
cluster per entry on 127.0.0.1 (its `version` served at /version), writes a kubeconfig with one
context per cluster, prints one line per cluster and a ready line, and serves until SIGINT or
SIGTERM; then it stops the servers and removes the kubeconfig it wrote. It never overwrites an
existing file: the kubeconfig is deleted on exit, so pointing it at a real one would lose it.
"""

from __future__ import annotations

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
from velapy.kube.emulator.tls import TlsError
from velapy.load.clusters import load_inventory


def serve(inventory: str, kubeconfig: str, out: TextIO, *, audit_log: str = "", rbac: str = "",
          ready_after: float = 0.0, stop: threading.Event | None = None, hold_images: Sequence[str] = ()) -> int:
    """Serve the fleet of `inventory` until a signal (or `stop`) arrives; the exit code."""
    inv = load_inventory(inventory)
    target = Path(kubeconfig)
    if target.exists():
        raise InputError([Diagnostic(
            f"{kubeconfig} already exists", Location(file=kubeconfig),
            "the emulator writes a fresh kubeconfig and deletes it when it stops; give a path that does not exist "
            "(never your real kubeconfig)")])
    if ready_after < 0:
        raise InputError("--ready-after must be zero or more seconds")
    try:
        fleet = Fleet(inv.names(), rbac=rbac or None, ready_after=ready_after, audit_log=audit_log or None,
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
        fleet.write_kubeconfig(target)
        width = max(len(n) for n in fleet.names())
        for c in fleet:
            out.write(f"{c.name:<{width}}  {c.url}\n")
        out.write(f"ready: {len(fleet)} emulated clusters; use kubectl --kubeconfig {target} --context "
                  f"<cluster> (Ctrl-C to stop)\n")
        out.flush()
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


