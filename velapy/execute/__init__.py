"""The executor: an emitted plan (folder, or an app rendered in memory) + cluster clients → the rollout.

`velapy apply` / `resume` / `status` / `delete` / `diff --live` call `session`; the run itself is
`runner` (workflow, gates, run state, garbage collection) over `deploy` (preflight, server-side
apply, health) per cluster. The executor never renders: an app file goes through the compiler
first and is then loaded like a folder (`planfile`, digests checked). Clusters are reached only
through the `velapy.kube.Client` protocol.
"""

from velapy.execute.progress import Reporter
from velapy.execute.runner import Options, Report
from velapy.execute.session import Session, Target, delete, open_session, run

__all__ = ["Options", "Report", "Reporter", "Session", "Target", "delete", "open_session", "run"]
