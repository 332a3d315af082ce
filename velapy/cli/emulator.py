"""The Kubernetes API emulator: emulate."""

from __future__ import annotations

import sys

import click

from velapy.cli.base import (
    _run,
    main,
)
from velapy.errors import InputError


@main.command("emulate")
@click.argument("clusters", type=click.Path())
@click.option("--kubeconfig", "kubeconfig", required=True, type=click.Path(),
              help="Write the kubeconfig here (a new file; removed on exit). One context per cluster.")
@click.option("--audit-log", "audit_log", default="", type=click.Path(),
              help="Append one JSON audit event per request here (metadata only, never bodies or tokens).")
@click.option("--rbac", "rbac", default="", type=click.Path(),
              help="RBAC rule table (YAML); without it every user may do everything and impersonate anyone.")
@click.option("--ready-after", "ready_after", default=0.0, type=float, show_default=True,
              help="Seconds after each spec change until workloads report a finished rollout.")
@click.option("--hold-image", "hold_images", multiple=True, metavar="GLOB",
              help="Workloads running an image that matches GLOB never finish their rollout (as an image that "
                   "cannot be pulled), until their image changes. Repeatable.")
@click.option("--background", is_flag=True, default=False,
              help="Serve from a process of its own and return once ready (stop it with kill PID).")
@click.option("--pid-file", "pid_file", default="", type=click.Path(), help="With --background: write its pid here.")
@click.option("--crd-delay", "crd_delay", default=0.2, type=float, show_default=True,
              help="Seconds until a new CRD is Established and its kind served (as kube-apiserver, not at once).")
@click.option("--namespace-delay", "namespace_delay", default=0.2, type=float, show_default=True,
              help="Seconds a deleted namespace stays Terminating before its contents are removed.")
@click.option("--fault", "faults", multiple=True, metavar="SPEC",
              help="Inject a fault (repeatable): comma-separated key=value, e.g. "
                   "'cluster=prod-beijing,method=PATCH,status=503,times=2'. Keys: cluster, method, path (regex), "
                   "user, after, times, status, retry-after, delay, drop, commit.")
@click.option("--down", "down", multiple=True, metavar="CLUSTER",
              help="Start with this cluster not answering (repeatable); type `start CLUSTER` to bring it up.")
def emulate_cmd(clusters: str, kubeconfig: str, audit_log: str, rbac: str, ready_after: float,
                hold_images: tuple[str, ...], background: bool, pid_file: str, crd_delay: float,
                namespace_delay: float, faults: tuple[str, ...], down: tuple[str, ...]) -> None:
    """Serve an emulated Kubernetes API for each cluster of CLUSTERS (and the hub) on 127.0.0.1 until
    Ctrl-C. A test and demo tool, not a Kubernetes: objects live in memory, nothing is scheduled, no
    container runs, controllers are simulated. While it serves, type `stop CLUSTER`, `start CLUSTER`,
    `fault SPEC` or `clear CLUSTER` on its standard input."""

    def go() -> int:
        from velapy.kube.emulator.serve import serve, serve_in_background

        if pid_file and not background:
            raise InputError("--pid-file goes with --background")
        if background:
            args = [clusters, "--kubeconfig", kubeconfig, "--ready-after", str(ready_after),
                    "--crd-delay", str(crd_delay), "--namespace-delay", str(namespace_delay)]
            args += [w for flag, v in (("--audit-log", audit_log), ("--rbac", rbac)) if v for w in (flag, v)]
            args += [w for g in hold_images for w in ("--hold-image", g)]
            args += [w for f in faults for w in ("--fault", f)]
            args += [w for d in down for w in ("--down", d)]
            return serve_in_background(args, kubeconfig, sys.stdout, pid_file)
        return serve(clusters, kubeconfig, sys.stdout, audit_log=audit_log, rbac=rbac, ready_after=ready_after,
                     hold_images=hold_images, faults=faults, down=down, commands=sys.stdin, crd_delay=crd_delay,
                     namespace_delay=namespace_delay)

    _run(go)
