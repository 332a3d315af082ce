"""The Kubernetes API emulator: emulate."""

from __future__ import annotations

import sys

import click

from velapy.cli.base import (
    _run,
    main,
)


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
def emulate_cmd(clusters: str, kubeconfig: str, audit_log: str, rbac: str, ready_after: float) -> None:
    """Serve an emulated Kubernetes API for each cluster of CLUSTERS (and the hub) on 127.0.0.1 until
    Ctrl-C. A test and demo tool, not a Kubernetes: objects live in memory, nothing is scheduled, no
    container runs, controllers are simulated."""

    def go() -> int:
        from velapy.kube.emulator.serve import serve

        return serve(clusters, kubeconfig, sys.stdout, audit_log=audit_log, rbac=rbac, ready_after=ready_after)

    _run(go)
