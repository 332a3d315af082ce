"""An ExecPlan + clients + a state store → the workflow run (steps, gates, GC) and its report.

The run follows the plan's steps like KubeVela's workflow: StepByStep or DAG, step groups,
`dependsOn`, `if`, `timeout`; deploy / apply-component steps go through `deploy.Placement` per
cluster, in parallel up to the step's `parallelism`; notification / webhook steps send their HTTP
request (`notify`). Gates (`suspend`, deploy with `auto: false`) save the state and stop with
exit 0 and the `velapy resume` command.

Run state (`state`) is read first and decides what this run is:
* no state, or another plan → a new run from the first step (the old inventory is kept for GC);
* the same plan, suspended → nothing to do until `velapy resume`;
* the same plan, failed or interrupted → continue: finished steps are not run again;
* the same plan, succeeded → drift correction: every object is re-applied (only those that
  drifted are written) and gates do not stop the run (KubeVela's state keep);
* `resume` → the gate the run waits at is passed, then as above.

The inventory is written before each apply. Garbage collection runs only after a successful run:
objects of earlier runs no longer in the plan are re-read and deleted only when still labelled
as this app's, with the live uid as precondition (garbage-collect policy: keepLegacyResource,
strategies onAppUpdate / onAppDelete / never, propagation, order).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from velapy import __version__
from velapy.errors import EXIT_CLUSTER, EXIT_OK, ClusterError, InputError
from velapy.execute.access import ClientPool
from velapy.execute.conditions import StepStatus
from velapy.execute.deploy import ClusterRollout, DeployOptions, Outcome, describe_error, owner_patch, read_live
from velapy.execute.notify import send_step
from velapy.execute.objects import apply_rank, owner, shared_by
from velapy.execute.planfile import ExecPlan, ObjectRef, Step
from velapy.execute.progress import Reporter
from velapy.execute.state import Entry, RunState, StateStore, StepState
from velapy.kube import ApiError, KubeError
from velapy.oam import A_SHARED_BY

FINISHED = ("succeeded", "failed", "skipped")
REMOVE_PARALLELISM = 16  # clusters whose objects GC and `velapy delete` remove at the same time


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    take_over: bool = False
    force_conflicts: bool = False
    create_namespaces: bool = False
    health_timeout: float = 300.0  # for deploy steps without a timeout
    poll_interval: float = 1.0
    crd_wait: float = 30.0
    steal_lease: bool = False  # take the run lease from a live holder (session.run)


@dataclass
class Report:
    app: str
    namespace: str
    phase: str
    message: str = ""
    applied: int = 0
    unchanged: int = 0
    deleted: int = 0
    kept: int = 0
    skipped_gc: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    resume_command: str = ""
    state: RunState | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.phase in ("succeeded", "suspended") else EXIT_CLUSTER


# rewritten by every run, so not a change of what the app owns: its id and times, the write's own id (see
# ConfigMapStore.save), where the state lives (set by the store on write), and who asked (with the time it
# asked; a run that changes something records its caller, and the revision history records every caller)
_VOLATILE = frozenset({"runId", "startedAt", "finishedAt", "updatedAt", "generation", "mode", "executorVersion",
                       "steps", "writeId", "store", "requestedBy"})


def settled_signature(state: RunState) -> str:
    """The state without what every run rewrites (its id, times, steps, generation, the resourceVersions it
    last saw) and with a running or succeeded phase alike: two runs of one finished plan that changed nothing
    have equal signatures; a failure, a new inventory entry, a new uid or a kept object changes it."""
    data = state.to_dict()
    sig = {k: v for k, v in data.items() if k not in _VOLATILE}
    sig["phase"] = "succeeded" if state.phase in ("running", "succeeded") else state.phase
    sig["inventory"] = [{k: v for k, v in e.items() if k != "resourceVersion"} for e in data["inventory"]]
    return json.dumps(sig, sort_keys=True, separators=(",", ":"))


class _Stop(Exception):
    """The run stops here (suspended at a gate)."""


class Runner:
    def __init__(self, plan: ExecPlan, pool: ClientPool, store: StateStore, options: Options, reporter: Reporter,
                 *, resume_command: str = "", source: Mapping[str, Any] | None = None) -> None:
        self.plan = plan
        self.pool = pool
        self.store = store
        self.opts = options
        self.rep = reporter
        self.resume_command = resume_command
        self.source = dict(source or {})
        self._lock = threading.RLock()
        self.report = Report(plan.app_name, plan.app_namespace, "running", resume_command=resume_command)
        self.state: RunState = RunState(plan.app_name, plan.app_namespace)
        self.keep = False
        self._order = {o.ref: i for i, o in enumerate(plan.objects())}
        # re-applying a finished plan: the state as loaded (see settled_signature); saves that would record
        # nothing new are skipped, so a run that finds no drift writes nothing, its run state included
        self._quiet: str | None = None
        # called once, before the first state write of such a run (the revision history records a drift
        # correction then: a re-apply that changed nothing leaves no revision, as it leaves no state write)
        self.before_first_write: Callable[[], None] | None = None
        self.requested_by: dict[str, Any] = {}  # the authenticated caller, recorded in the state (audit)
        self.unreachable: dict[str, str] = {}  # inventory clusters without a client: why
        self._cancel = threading.Event()  # set on Ctrl-C: the cluster pipelines stop at their next wait
        # run control (velapy.execute.control): asked at each step boundary whether this run is to
        # suspend (by whom; '' = go on), so `velapy suspend` in another process stops it there
        self.suspend_requested: Callable[[str], str] | None = None

    # ------------------------------------------------------------------------------------------
    # state

    def _save(self) -> None:
        with self._lock:
            if self._quiet is not None:
                if settled_signature(self.state) == self._quiet:
                    return  # a drift-correcting run that has changed nothing so far: nothing to record
                self._quiet = None  # from here on, every save writes
                if self.before_first_write is not None:
                    self.before_first_write()
            self.state.updatedAt = now()
            self.store.save(self.state)

    @property
    def quiet(self) -> bool:
        """Re-applying a finished plan, and nothing recorded yet (see `_save`)."""
        return self._quiet is not None

    def _new_state(self, old: RunState | None) -> RunState:
        st = RunState(self.plan.app_name, self.plan.app_namespace, planDigest=self.plan.digest,
                      runId=uuid.uuid4().hex[:12], phase="running", mode="apply", startedAt=now(),
                      executorVersion=__version__, source=self.source)
        if old is not None:
            st.generation = old.generation
            st.resourceVersion = old.resourceVersion
            st.inventory = list(old.inventory)
            st.clusters = dict(old.clusters)
            planned = {o.ref for o in self.plan.objects()}
            for e in st.inventory:  # no longer planned: garbage collection removes them after a successful run
                if e.ref not in planned and e.state != "kept":
                    e.state = "orphaned"
        st.steps = [StepState(s.name, s.type) for s in self.plan.all_steps()]
        return st

    def _record_clusters(self) -> None:
        # clusters of the inventory this run has no client for keep what an earlier run recorded
        out: dict[str, dict[str, Any]] = {c: d for c, d in self.state.clusters.items()
                                          if any(e.cluster == c for e in self.state.inventory)}
        for name, acc in self.pool.accesses.items():
            # absolute paths: `velapy status APP -n NS` from another folder reaches the clusters again
            d: dict[str, Any] = {"kubeconfig": os.path.abspath(acc.kubeconfig) if acc.kubeconfig else "",
                                 "context": acc.context}
            if acc.identity is not None:
                d["identity"] = {"user": acc.identity.user, "groups": list(acc.identity.groups)}
            out[name] = d
        self.state.clusters = out

    def start(self, resume: bool) -> bool:
        """Load the state and decide what this run does; False when there is nothing to run."""
        old = self.store.load(self.plan.app_namespace, self.plan.app_name)
        ident = f"{self.plan.app_namespace}/{self.plan.app_name}"
        if resume:
            if old is None:
                raise InputError(f"app {ident} has no run to resume (no run state in {self.store.describe()})")
            if old.planDigest != self.plan.digest:
                raise InputError(f"app {ident}: the plan changed since its run stopped; `velapy apply` it to start a "
                                 "new run from the first step")
            if old.phase not in ("suspended", "failed", "running", "interrupted"):
                raise InputError(f"app {ident}: its run is not suspended (phase {old.phase}): nothing to resume")
            self.state = old
            if old.phase == "suspended":
                st = old.step(old.suspendedStep)
                if st is not None:
                    if st.type == "suspend":
                        st.phase, st.finishedAt, st.message = "succeeded", now(), "resumed"
                    else:
                        st.phase, st.reason, st.message = "pending", "Approved", "approved"
                self.rep.say(f"resuming {ident} at step {old.suspendedStep}")
            self.state.suspend, self.state.suspendedStep = False, ""
            self.state.phase = "running"
            self.keep = old.mode == "keep"
            self._retry_failed()
            return True
        if old is not None and old.planDigest == self.plan.digest and old.phase != "terminated":
            if old.phase == "suspended":
                self.state = old
                self.report.phase = "suspended"
                self.report.message = f"waiting at step {old.suspendedStep} (nothing applied by this run)"
                return False
            if old.phase in ("failed", "running", "interrupted"):
                self.state = old
                self.state.phase = "running"
                self.keep = old.mode == "keep"
                self._retry_failed()
                self.rep.say(f"continuing the unfinished run of {ident} (finished steps are not run again)")
                return True
            # the finished plan again: re-apply everything, gates do not stop it
            self._quiet = settled_signature(old)
            self.state = self._new_state(old)
            self.state.mode = "keep"
            self.keep = True
            self.rep.say(f"{ident}: this plan already ran to the end; re-applying it to correct drift")
            return True
        self.state = self._new_state(old)
        if old is not None:
            self.rep.say(f"{ident}: a new plan ({self.plan.digest[7:19]}); starting a new run from the first step")
        return True

    def _retry_failed(self) -> None:
        """Continuing a failed run: failed steps run again (their clusters that succeeded are kept), and
        steps skipped after them are decided again; succeeded steps stay done."""
        for st in self.state.steps:
            if st.phase in ("failed", "skipped", "running"):
                st.phase, st.message, st.reason = "pending", "", ""

    # ------------------------------------------------------------------------------------------
    def run(self, resume: bool = False) -> Report:
        if not self.start(resume):
            self.report.state = self.state
            return self.report
        return self.proceed()

    def proceed(self) -> Report:
        """Run the steps `start` chose, then collect garbage after a success."""
        self._record_clusters()
        if self.requested_by:
            self.state.requestedBy = dict(self.requested_by, at=now())
        if not self.opts.dry_run:
            self._save()
        try:
            outcome = self._level(list(self.plan.steps), self.plan.mode, None)
        except KeyboardInterrupt:
            # Ctrl-C: say so in the state (status shows `interrupted` and how to continue), then stop
            self.state.phase = "interrupted"
            self.state.message = "interrupted (Ctrl-C)" + (
                f"; continue with: {self.resume_command}" if self.resume_command else "; run the same command again")
            if not self.opts.dry_run:
                with contextlib.suppress(Exception):
                    self._save()
            raise
        except _Stop:
            self.state.phase = "suspended"
            self.state.suspend = True
            self.report.phase = "suspended"
            step = self.state.suspendedStep
            self.report.message = f"suspended at step {step}"
            self._save()
            self.report.state = self.state
            return self.report
        failed = outcome == "failed"
        if not failed and not self.opts.dry_run:
            before = len(self.report.problems)
            self._collect_garbage()
            failed = len(self.report.problems) > before  # a failed delete fails the run; its entry stays
        self.state.phase = "failed" if failed else "succeeded"
        self.state.finishedAt = now()
        # the message is this run's: a failure's first problems, nothing after a success
        self.state.message = self.rep.redact("; ".join(self.report.problems[:3])) if failed else ""
        self.report.phase = self.state.phase
        if not self.opts.dry_run:
            self._save()
        self.report.state = self.state
        return self.report

    # ------------------------------------------------------------------------------------------
    # steps

    def _statuses(self) -> dict[str, StepStatus]:
        return {s.name: StepStatus(s.name, s.type, s.phase, s.message, s.reason) for s in self.state.steps}

    def _should_run(self, step: Step, earlier: Sequence[Step], mode: str) -> bool:
        statuses = self._statuses()
        prior = [statuses[s.name] for s in earlier if s.name in statuses]
        if step.condition is not None:
            return step.condition.evaluate(statuses, prior)
        if step.depends_on or mode == "DAG":
            return all(statuses.get(d) is not None and statuses[d].phase == "succeeded" for d in step.depends_on)
        return not any(p.phase not in ("succeeded", "skipped") for p in prior)

    def _level(self, steps: list[Step], mode: str, deadline: float | None) -> str:
        """Run one level of steps; 'failed' when any failed (a gate raises _Stop)."""
        done: list[Step] = []
        failed = False
        if mode == "StepByStep":
            for s in steps:
                failed |= self._one(s, done, mode, deadline) == "failed"
                done.append(s)
            return "failed" if failed else "ok"
        remaining = list(steps)
        while remaining:
            names = {s.name for s in remaining}
            ready = [s for s in remaining if not any(d in names for d in s.depends_on)]
            if not ready:  # a cycle the planner would have refused; run in order
                ready = [remaining[0]]
            gates = [s for s in ready if self._gate_pending(s)]
            runnable = [s for s in ready if s not in gates]
            if len(runnable) > 1:
                with ThreadPoolExecutor(max_workers=min(8, len(runnable))) as ex:
                    results = list(ex.map(lambda s: self._one(s, done, mode, deadline), runnable))
            else:
                results = [self._one(s, done, mode, deadline) for s in runnable]
            failed |= "failed" in results
            done.extend(runnable)
            for s in runnable:
                remaining.remove(s)
            if gates:
                self._one(gates[0], done, mode, deadline)  # raises _Stop
                done.append(gates[0])
                remaining.remove(gates[0])
        return "failed" if failed else "ok"

    def _gate_pending(self, step: Step) -> bool:
        st = self.state.step(step.name)
        return (step.gate is not None and not self.keep and st is not None and st.phase not in FINISHED
                and st.reason != "Approved" and step.gate.duration is None)

    def _one(self, step: Step, earlier: Sequence[Step], mode: str, deadline: float | None) -> str:
        st = self.state.step(step.name)
        assert st is not None
        if st.phase in ("succeeded", "skipped"):
            return st.phase
        if not self._should_run(step, earlier, mode):
            st.phase, st.finishedAt = "skipped", now()
            self.rep.say(f"step {step.name}: skipped" + (f" (if: {step.condition.text})" if step.condition else ""))
            return "skipped"
        if self._gate_pending(step):
            assert step.gate is not None
            st.phase = "suspending"
            self.state.suspendedStep = step.name
            what = "waiting for approval" if step.gate.type == "approval" else "suspended"
            self.rep.say(f"step {step.name}: {what}" + (f": {step.gate.message}" if step.gate.message else ""))
            raise _Stop()
        if step.gate is None and self.suspend_requested is not None and not self.opts.dry_run:
            by = self.suspend_requested(self.state.runId)
            if by:  # `velapy suspend`: stop before this step; `resume` runs it
                self.state.suspendedStep = step.name
                self.state.message = f"suspended by {by} before step {step.name}"
                self.rep.say(f"step {step.name}: suspended on request of {by}")
                raise _Stop()
        st.phase, st.startedAt, st.attempts = "running", st.startedAt or now(), st.attempts + 1
        st.message, st.reason = "", ""
        own_deadline = time.monotonic() + step.timeout if step.timeout is not None else None
        if deadline is not None:
            own_deadline = min(own_deadline, deadline) if own_deadline is not None else deadline
        self.rep.say(f"step {step.name} [{step.type}]")
        if step.type == "suspend":
            assert step.gate is None or step.gate.duration is not None or self.keep
            if step.gate is not None and step.gate.duration and not self.keep:
                self.rep.say(f"step {step.name}: waiting {step.gate.duration:g}s")
                time.sleep(step.gate.duration)
            phase, msg = "succeeded", ""
        elif step.type == "step-group":
            res = self._level(list(step.sub_steps), step.mode, own_deadline)
            phase, msg = ("failed", "a sub-step failed") if res == "failed" else ("succeeded", "")
        elif step.type in ("deploy", "apply-component"):
            phase, msg, reason = self._deploy(step, st, deadline)  # each cluster gets its own step timeout
            st.reason = reason
        else:
            phase, msg = self._http(step)
        st.phase, st.message, st.finishedAt = phase, self.rep.redact(msg), now()
        self.rep.say(f"step {step.name}: {phase}" + (f": {msg}" if msg and phase == "failed" else ""))
        if not self.opts.dry_run:
            self._save()
        return phase

    def _http(self, step: Step) -> tuple[str, str]:
        if self.opts.dry_run:
            return "succeeded", "not sent (dry run)"
        try:
            note = send_step(step, self.pool.hub, self.plan.app_namespace, self.rep.learn_secret)
        except ClusterError as exc:
            msg = exc.diagnostics[0].message
            self.report.problems.append(f"step {step.name}: {msg}")
            return "failed", msg
        self.rep.say(f"  {note}")
        return "succeeded", ""

    # ------------------------------------------------------------------------------------------
    # deploy

    def _deploy(self, step: Step, st: StepState, outer: float | None) -> tuple[str, str, str]:
        """Each cluster runs its own pipeline (preflight → intent → apply → health) with its own deadline (the
        step's timeout from when its pipeline starts, within an enclosing step group's): a cluster that hangs
        never uses up the time of a healthy one."""
        span = step.timeout if step.timeout is not None else self.opts.health_timeout
        dopts = DeployOptions(self.plan.app_name, self.plan.app_namespace, keep=self.keep,
                              take_over=self.opts.take_over, force_conflicts=self.opts.force_conflicts,
                              create_namespaces=self.opts.create_namespaces, dry_run=self.opts.dry_run,
                              poll_interval=self.opts.poll_interval, crd_wait=self.opts.crd_wait)
        todo = [pl for pl in step.placements if st.clusters.get(pl.cluster) != "succeeded" or self.keep]
        if not todo:
            return "succeeded", "", ""
        by_cluster: dict[str, list[Any]] = {}
        for pl in todo:
            for o in pl.objects:
                by_cluster.setdefault(o.cluster, []).append(o)
        places: list[ClusterRollout] = []
        for cluster, objs in by_cluster.items():
            places.append(ClusterRollout(self.pool[cluster], objs, dopts, step.component_depends_on,
                                         self.rep.say, self.rep.working))
            places[-1].cancel = self._cancel
        workers = max(1, min(step.parallelism, len(places)))

        def problems(out: Outcome) -> None:
            with self._lock:
                st.clusters[out.cluster] = "failed"
                for line in out.problems:
                    self.rep.say(f"  {line}")
                    self.report.problems.append(line)

        def pipeline(p: ClusterRollout) -> Outcome:
            c = p.client.cluster
            deadline = time.monotonic() + span
            if outer is not None:
                deadline = min(deadline, outer)
            p.client.set_deadline(deadline)  # the cluster's deadline bounds every request to it
            try:
                self.rep.working(f"  {c}: preflight")
                pre = p.preflight()
                if not pre.ok:
                    problems(pre)
                    return pre
                if self.opts.dry_run:
                    n = sum(1 for it in p.items if it.action == "apply")
                    self.rep.say(f"  {c}: {n} object(s) would be written, {len(p.items) - n} unchanged (dry run)")
                    return pre
                with self._lock:  # the intent, before any write to this cluster
                    changed = False
                    for it in p.items:
                        changed |= self._intend(step, it.obj)
                    if changed:
                        self._save()
                out = p.apply(deadline)
                with self._lock:
                    for it in p.items:
                        if it.lost:
                            self._lost(it.obj.ref)
                        else:
                            self._applied(it.obj.ref, it.result)
                    self.report.applied += out.applied
                    self.report.unchanged += out.unchanged
                    if out.ok:
                        st.clusters[c] = "succeeded"
                if out.ok:
                    self.rep.say(f"  {c}: {out.applied} applied, {out.unchanged} unchanged, healthy")
                else:
                    problems(out)
                return out
            finally:
                p.client.set_deadline(None)

        ex = ThreadPoolExecutor(max_workers=workers)
        try:
            outs = list(ex.map(pipeline, places))
        except KeyboardInterrupt:
            self._cancel.set()  # the pipelines stop waiting; then the interrupt goes on up
            ex.shutdown(wait=True, cancel_futures=True)
            raise
        ex.shutdown(wait=True)
        bad = [o for o in outs if not o.ok]
        if not bad:
            return "succeeded", "", ""
        reason = next((o.reason for o in bad if o.reason), "")
        if any(o.unreachable for o in bad):
            reason = "Unreachable"
        clusters = ", ".join(sorted({o.cluster for o in bad}))
        return "failed", f"failed in cluster{'s' if ',' in clusters else ''} {clusters}", reason

    def _lost(self, ref: ObjectRef) -> None:
        """Another app (or someone) claimed an object while this run applied it: this app never owned it, so
        its intent entry goes (no state may list an object it does not own)."""
        e = self.state.entry(ref)
        if e is not None and not e.uid:
            self.state.drop([e])

    def _intend(self, step: Step, o: Any) -> bool:
        """Record an object about to be applied; True when the inventory changed."""
        e = self.state.entry(o.ref)
        gc = dict(o.rules.get("garbageCollect") or {})
        if e is None:
            e = Entry(o.cluster, o.api_version, o.kind, o.namespace, o.name)
            self.state.add(e)
        before = (e.apiVersion, e.digest, e.step, e.component, e.gc, e.shared, e.readOnly, e.order, e.state)
        if e.state in ("kept", "orphaned"):
            e.state = "pending"
        e.apiVersion, e.digest, e.step, e.component = o.api_version, o.digest, step.name, o.component
        e.gc, e.shared, e.readOnly = gc, bool(o.rules.get("sharedResource")), bool(o.rules.get("readOnly"))
        e.order = self._order.get(o.ref, 0)
        return before != (e.apiVersion, e.digest, e.step, e.component, e.gc, e.shared, e.readOnly, e.order, e.state)

    def _applied(self, ref: ObjectRef, live: Mapping[str, Any] | None) -> None:
        e = self.state.entry(ref)
        if e is None or live is None:
            return
        meta = live.get("metadata") or {}
        e.uid = str(meta.get("uid") or e.uid)
        e.resourceVersion = str(meta.get("resourceVersion") or e.resourceVersion)
        e.state = "applied"

    # ------------------------------------------------------------------------------------------
    # garbage collection and delete

    def _gc_sorted(self, entries: list[Entry]) -> list[Entry]:
        order = str((self.plan.resource_policies.get("garbage-collect") or {}).get("order") or "")
        if order == "dependency":
            deps: dict[str, set[str]] = {}
            for s in self.plan.all_steps():
                for comp, ds in s.component_depends_on.items():
                    deps.setdefault(comp, set()).update(ds)

            def depth(c: str, seen: frozenset[str] = frozenset()) -> int:
                return 1 + max((depth(d, seen | {c}) for d in deps.get(c, ()) if d not in seen), default=-1)

            return sorted(entries, key=lambda e: (-depth(e.component), -apply_rank(e.ref.group, e.kind), -e.order))
        return sorted(entries, key=lambda e: (-apply_rank(e.ref.group, e.kind), -e.order))

    def _collect_garbage(self) -> None:
        planned = set(self._order)
        gcp = self.plan.resource_policies.get("garbage-collect") or {}
        keep_legacy = bool(gcp.get("keepLegacyResource"))
        gone = [e for e in self.state.inventory if e.ref not in planned]
        doomed: list[Entry] = []
        for e in self._gc_sorted(gone):
            strategy = e.gc.get("strategy", "onAppUpdate")
            if keep_legacy or strategy in ("never", "onAppDelete") or e.readOnly:
                if e.state != "kept":
                    e.state = "kept"
                    self.report.kept += 1
                    why = "keepLegacyResource" if keep_legacy else ("read-only" if e.readOnly else strategy)
                    self.rep.say(f"gc: kept {e.ref.text()} ({why})")
                continue
            doomed.append(e)
        self._remove_all(doomed, "gc")

    def _remove_all(self, entries: Sequence[Entry], verb: str) -> None:
        """`_remove` every entry: the clusters in parallel (up to REMOVE_PARALLELISM), each cluster's entries
        in the given order; the live objects are read with one LIST per (cluster, kind, namespace) where
        several share one. Settled entries leave the inventory in one pass at the end."""
        by_cluster: dict[str, list[Entry]] = {}
        for e in entries:
            by_cluster.setdefault(e.cluster, []).append(e)
        if not by_cluster:
            return

        def one(es: list[Entry]) -> list[Entry]:
            live = self._prefetch(es)
            return [e for e in es if self._remove(e, verb, live)]

        workers = max(1, min(REMOVE_PARALLELISM, len(by_cluster)))
        if workers == 1:
            settled = [one(es) for es in by_cluster.values()]
        else:
            with ThreadPoolExecutor(max_workers=workers) as ex:
                settled = list(ex.map(one, by_cluster.values()))
        self.state.drop(e for es in settled for e in es)

    def _prefetch(self, entries: Sequence[Entry]) -> dict[ObjectRef, dict[str, Any] | None]:
        """One cluster's entries → their live objects, read by LIST where 2+ entries share a kind and namespace
        (a failed LIST, e.g. a 403, leaves them to `_remove`'s own GET)."""
        if not entries:
            return {}
        try:
            client = self.pool[entries[0].cluster]
        except KeyError:
            return {}
        return read_live(client, [(e.ref, e.apiVersion) for e in entries])

    def _remove(self, e: Entry, verb: str, known: Mapping[ObjectRef, dict[str, Any] | None] | None = None) -> bool:
        """Delete one inventory entry's object if it is still this app's; True when the entry is settled (the
        caller drops it). `known`: live objects read before (a LIST); the delete then also names the listed
        resourceVersion as precondition, and a 409 sends it back through a fresh GET."""
        me = (self.plan.app_namespace, self.plan.app_name)
        try:
            client = self.pool[e.cluster]
        except KeyError:
            why = self.unreachable.get(e.cluster, "no kubeconfig context for it")
            self._problem(f"{verb}: cannot reach cluster {e.cluster} for {e.ref.describe()}: {why}; "
                          "it stays recorded for the next run")
            return False
        listed = known is not None and e.ref in known
        try:
            rt = client.resource(e.apiVersion, e.kind)
            ns = e.namespace if rt.namespaced else ""
            live = known[e.ref] if known is not None and listed else client.get(rt, ns, e.name)
            if live is None:
                return True
            own = owner(live)
            if e.shared:
                tag = f"{me[0]}/{me[1]}"
                rest = [s for s in shared_by(live) if s != tag]
                if rest:
                    if own == me or tag in shared_by(live):
                        patch = owner_patch(live, rest) if own == me else {
                            "metadata": {"resourceVersion": (live.get("metadata") or {}).get("resourceVersion"),
                                         "annotations": {A_SHARED_BY: ",".join(rest)}}}
                        client.merge_patch(rt, ns, e.name, patch)
                    self._note(f"{verb}: released shared {e.ref.text()} (still used by {', '.join(rest)})")
                    return True
            if own != me:
                who = f"{own[0]}/{own[1]}" if own else "no application"
                self._skipped(f"{verb}: skipped {e.ref.text()}: owned by {who}")
                return True
            meta = live.get("metadata") or {}
            uid = str(meta.get("uid") or "")
            if e.uid and uid != e.uid:
                # deleted and re-created by someone else since this app applied it: not this app's object
                self._kept(verb, f"kept {_where(e)}: re-created by someone else (uid changed)")
                return True
            prop = {"orphan": "Orphan", "cascading": "Background"}.get(e.gc.get("propagation", ""), "")
            # the recorded uid is the precondition: an object re-created between the read and the delete survives;
            # a listed object also names the resourceVersion the LIST saw (changed since: decided again below)
            client.delete(rt, ns, e.name, uid=e.uid or uid, propagation=prop,
                          resource_version=str(meta.get("resourceVersion") or "") if listed else "")
        except ApiError as exc:
            if exc.status == 404:
                return True
            if exc.status == 409 and listed:
                return self._remove(e, verb)  # changed since the LIST: decide again on a fresh GET
            if exc.status == 409:
                msg = f"{verb}: kept {_where(e)}: re-created by someone else (uid changed)"
                with self._lock:
                    self.report.skipped_gc.append(msg)
                self.rep.say(msg)
                return True
            self._problem(describe_error(exc, client, "delete", None, e.namespace, e.name, e.kind))
            return False
        except KubeError as exc:
            self._problem(describe_error(exc, client, "delete", None, e.namespace, e.name, e.kind))
            return False
        with self._lock:
            self.report.deleted += 1
        self.rep.say(f"{verb}: deleted {e.ref.text()}")
        return True

    def _problem(self, text: str) -> None:
        with self._lock:
            self.report.problems.append(text)

    def _skipped(self, text: str) -> None:
        with self._lock:
            self.report.skipped_gc.append(text)
        self.rep.say(text)

    def _kept(self, verb: str, msg: str) -> None:
        with self._lock:
            self.report.skipped_gc.append(msg)
        self.rep.say(f"{verb}: {msg}")

    def _note(self, text: str) -> None:
        self.rep.say(text)

    def delete_all(self) -> Report:
        """`velapy delete`: remove every object the app owns (garbage-collect strategy `never` excepted)."""
        old = self.store.load(self.plan.app_namespace, self.plan.app_name)
        ident = f"{self.plan.app_namespace}/{self.plan.app_name}"
        if old is None:
            raise InputError(f"app {ident} has no run state in {self.store.describe()}: velapy applied nothing "
                             "for it that it could delete")
        self.state = old
        kept: list[Entry] = []
        doomed: list[Entry] = []
        for e in self._gc_sorted(list(old.inventory)):
            if e.gc.get("strategy") == "never" or e.readOnly:
                self.rep.say(f"delete: kept {e.ref.text()} ({'read-only' if e.readOnly else 'never'})")
                self.report.kept += 1
                kept.append(e)
                continue
            doomed.append(e)
        self.state.drop(kept)
        self._remove_all(doomed, "delete")
        self.report.phase = "deleted" if not self.report.problems else "failed"
        if self.state.inventory or self.report.problems:
            self.state.phase = "failed"
            self.state.message = self.rep.redact("delete did not finish: " + "; ".join(self.report.problems[:3]))
            self._save()
        else:
            self.store.remove(self.state)
        self.report.state = self.state
        return self.report


def _where(e: Entry) -> str:
    """`Deployment retail/legacy in hz-test`."""
    return f"{e.kind} {e.namespace + '/' if e.namespace else ''}{e.name} in {e.cluster}"


__all__ = ["Options", "Report", "Runner", "now"]
