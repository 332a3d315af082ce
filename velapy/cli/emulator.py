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
                crd_delay: float, namespace_delay: float, faults: tuple[str, ...], down: tuple[str, ...]) -> None:
    """Serve an emulated Kubernetes API for each cluster of CLUSTERS (and the hub) on 127.0.0.1 until
    Ctrl-C. A test and demo tool, not a Kubernetes: objects live in memory, nothing is scheduled, no
    container runs, controllers are simulated. While it serves, type `stop CLUSTER`, `start CLUSTER`,
    `fault SPEC` or `clear CLUSTER` on its standard input."""

    def go() -> int:
        from velapy.kube.emulator.serve import serve

        return serve(clusters, kubeconfig, sys.stdout, audit_log=audit_log, rbac=rbac, ready_after=ready_after,
                     faults=faults, down=down, commands=sys.stdin, crd_delay=crd_delay,
                     namespace_delay=namespace_delay)

    _run(go)
