"""A Kubernetes API emulator for tests and demos (a second program: the compiler and the executor
never import it; only the `velapy emulate` command and the tests do).

Cluster names → HTTP servers on 127.0.0.1 that answer the Kubernetes API the way kube-apiserver
does for the calls velapy, kubectl and the official Python client make: discovery, CRUD, server-side
apply with field ownership, dry runs, RBAC and impersonation, an audit log, simulated controllers
and injected faults. It is not a Kubernetes: nothing is scheduled, no container runs.

    from velapy.kube.emulator import Fleet, Fault
    with Fleet(["local", "a"]) as fleet:
        fleet.write_kubeconfig(path)
        fleet["a"].add_fault(Fault(method="PATCH", status=503, times=1))
"""

from velapy.kube.emulator.auth import Authorizer, RbacError
from velapy.kube.emulator.fleet import Fleet
from velapy.kube.emulator.server import Cluster, Fault, Request
from velapy.kube.emulator.store import ApiError

__all__ = ["ApiError", "Authorizer", "Cluster", "Fault", "Fleet", "RbacError", "Request"]
