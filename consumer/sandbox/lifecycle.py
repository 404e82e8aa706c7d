"""The SIS import lifecycle with Canvas's rules (docs/canvas.md), over asyncio, without HTTP.

- `create` runs inside the POST: the row is saved `initializing` (event), then `created` (event),
  both with the request's metadata. A parameter Canvas checks after saving leaves an orphan.
- One runner task per root account takes `created` imports oldest first, one at a time: the
  `SisBatch.process_all_for_account` job on its per-account strand. Its events carry job metadata.
- `cleanup_batch` and `aborted` are written without an event (`update_all` in Canvas), and
  without touching `updated_at`; an abort of the running import delays the next one.
- The job extracts the CSVs (`csv_attachments`) when it starts, records errors and warnings when it
  ends, and a later job writes them to `errors_attachment`.
- `restore_states` queues a job of its own: `restoring`, then `restored` or `partially_restored`,
  each with an event, whatever the SIS job of the account is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.sandbox.accounts import Account, Directory
from consumer.sandbox.delivery import EventDelivery, Fate
from consumer.sandbox.files import FileStore
from consumer.sandbox.knobs import Knobs, Plan, draw_plan, scripted_plan
from consumer.sandbox.live_events import JobContext, RequestContext, sis_batch_event
from consumer.sandbox.model import (
    FINISHED,
    NOT_COMPLETED,
    NOT_STARTED,
    RESTORED,
    Attachment,
    Progress,
    SisImport,
    finish_data,
)
from consumer.sandbox.params import ApiError, parse_create
from consumer.sandbox.sis_errors import errors_file, listed, planned_errors
from consumer.sandbox.uploads import summarize

RESTORE_JOB_TAG = "SisBatch#restore_states_for_batch"

Now = Callable[[], datetime]
"""What the simulation asks for the time (tests move it by hand); not the daemon's `ports.Clock`."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes
    content_type: str = "text/csv"


class ImportEngine:
    def __init__(
        self,
        directory: Directory,
        knobs: Knobs,
        delivery: EventDelivery,
        rng: random.Random,
        clock: Now = utc_now,
    ) -> None:
        self._directory = directory
        self._knobs = knobs
        self._delivery = delivery
        self._rng = rng
        self._clock = clock
        self.imports: dict[int, SisImport] = {}
        self.files = FileStore(clock)
        self.progresses: dict[int, Progress] = {}
        self._batch_ids = itertools.count(knobs.first_sis_batch_id)
        self._error_ids = itertools.count(1)
        self._progress_ids = itertools.count(90_001)
        self._fates = itertools.cycle(knobs.fates) if knobs.fates else None
        self._job_ids = itertools.count(1_020_020_528_469_291)
        self._plans: dict[int, deque[Plan]] = {a.id: deque() for a in directory.roots}
        self._wake = {a.id: asyncio.Event() for a in directory.roots}
        self._jobs_running = {a.id: asyncio.Event() for a in directory.roots}
        self._aborts: dict[int, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runners: list[asyncio.Task[None]] = []

    # ---- ownership -------------------------------------------------------------------------------
    def start(self) -> None:
        for account in self._directory.roots:
            if self._knobs.jobs_running:
                self._jobs_running[account.id].set()
            task = asyncio.create_task(self._run_account(account), name=f"sandbox-jobs-{account.id}")
            self._runners.append(task)

    async def close(self) -> None:
        tasks = [*self._runners, *self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- knobs per account -----------------------------------------------------------------------
    def queue_plan(self, account_id: int, plan: Plan) -> None:
        if account_id not in self._plans:
            raise ValueError(f"account {account_id} is not a root account: it has no imports to plan")
        self._plans[account_id].append(plan)

    def set_jobs_running(self, account_id: int, running: bool) -> None:
        event = self._jobs_running[account_id]
        if running:
            event.set()
        else:
            event.clear()

    def _next_plan(self, account_id: int) -> Plan:
        plans = self._plans[account_id]
        if plans:
            return plans.popleft()
        if self._fates is not None:
            return scripted_plan(next(self._fates))
        return draw_plan(self._knobs, self._rng)

    # ---- writes ----------------------------------------------------------------------------------
    def _commit(
        self,
        imp: SisImport,
        state: str,
        origin: RequestContext | JobContext | None,
        *,
        touch: bool = True,
    ) -> None:
        """Save a state change; then (after the commit, as Canvas does) emit its event.

        `origin=None` is Canvas's `update_all`: no callbacks, so no event and no `updated_at`.
        """
        now = self._clock()
        imp.workflow_state = state
        imp.history.append((state, now))
        if touch:
            imp.updated_at = now
        if origin is None:
            return
        root = self._directory.by_id[imp.account_id]
        plan = imp.plan or Plan()
        fate = Fate(
            lose=True if state in plan.lose else None,
            duplicate=True if state in plan.duplicate else None,
            extra_delay=plan.delay.get(state, 0.0),
        )
        self._delivery.emit(sis_batch_event(root, imp.id, state, now, origin), fate)

    async def create(
        self,
        root: Account,
        params: Mapping[str, str],
        upload: Upload,
        ctx: RequestContext,
        origin: str = "api",
    ) -> SisImport | ApiError:
        parsed = parse_create(params, root.term)
        if parsed.early_error is not None:
            return parsed.early_error
        if parsed.late_error is not None and not self._knobs.orphan_on_400:
            return parsed.late_error
        now = self._clock()
        imp = SisImport(
            id=next(self._batch_ids),
            account_id=root.id,
            user=ctx.user,
            options=parsed.options,
            params=dict(params),
            created_at=now,
            updated_at=now,
            origin=origin,
            request_id=ctx.request_id,
            upload_name=upload.name,
            upload=upload.data,
            summary=summarize(upload.name, upload.data),
            plan=None if parsed.late_error is not None else self._next_plan(root.id),
            data={"import_type": parsed.options.import_type},
        )
        imp.upload_attachment = self.files.add(root.id, upload.name, upload.content_type, upload.data)
        self.imports[imp.id] = imp
        self._aborts[imp.id] = asyncio.Event()
        self._commit(imp, "initializing", ctx)
        if parsed.late_error is not None:
            return parsed.late_error  # the orphan: saved, announced, never continued
        if self._knobs.initializing_seconds:
            await asyncio.sleep(self._knobs.scaled(self._knobs.initializing_seconds))
        if imp.workflow_state == "initializing":  # not aborted meanwhile
            self._commit(imp, "created", ctx)
            self._wake[root.id].set()
        return imp

    def abort_batch(self, imp: SisImport) -> bool:
        """`SisBatch#abort_batch`: any unfinished import; silent; the running job notices."""
        if imp.workflow_state not in NOT_COMPLETED:
            return False
        self._commit(imp, "aborted", None, touch=False)
        self._aborts[imp.id].set()
        return True

    def abort_all_pending(self, account_id: int) -> int:
        """`SisBatch.abort_all_pending_for_account`: imports not started yet; progress 100."""
        pending = [
            imp
            for imp in self.imports.values()
            if imp.account_id == account_id and imp.workflow_state in NOT_STARTED
        ]
        for imp in pending:
            imp.progress = 100
            self._commit(imp, "aborted", None, touch=False)
            self._aborts[imp.id].set()
        return len(pending)

    def _extract(self, imp: SisImport) -> list[Attachment]:
        """`csv_attachments`: a CSV upload is its own; a zip gives one attachment per CSV in it."""
        if imp.upload_attachment is not None and imp.upload_name.lower().endswith(".csv"):
            return [imp.upload_attachment]
        return [self.files.add(imp.account_id, f.name, "text/csv", f.data) for f in imp.summary.files]

    # ---- the per-account job ---------------------------------------------------------------------
    def _next_created(self, account_id: int) -> SisImport | None:
        waiting = [
            imp
            for imp in self.imports.values()
            if imp.account_id == account_id and imp.workflow_state == "created"
        ]
        return min(waiting, key=lambda imp: imp.id, default=None)

    async def _run_account(self, root: Account) -> None:
        wake, running = self._wake[root.id], self._jobs_running[root.id]
        while True:
            await running.wait()
            wake.clear()
            imp = self._next_created(root.id)
            if imp is None:
                await wake.wait()
                continue
            plan = imp.plan or Plan()
            pickup = plan.queue_seconds if plan.queue_seconds is not None else self._knobs.queue_seconds
            await asyncio.sleep(self._knobs.scaled(pickup))
            if imp.workflow_state != "created" or not running.is_set():
                continue
            if await self._process(imp, plan):
                await asyncio.sleep(self._knobs.scaled(self._knobs.after_abort_seconds))

    async def _pause(self, imp: SisImport, seconds: float | None) -> bool:
        """Sleep (forever when None) unless the import is aborted first; True if it was."""
        aborted = self._aborts[imp.id]
        if seconds is None:
            await aborted.wait()
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._knobs.scaled(seconds)):
                await aborted.wait()
        return aborted.is_set()

    async def _work(self, imp: SisImport, seconds: float, target: int) -> bool:
        """Advance `progress` towards `target` in steps: no event, no `updated_at` (Canvas's
        `fast_update_progress`). True if aborted meanwhile."""
        steps = self._knobs.progress_steps
        for step in range(1, steps + 1):
            if await self._pause(imp, seconds / steps):
                return True
            imp.progress = round(target * step / steps)
        return False

    async def _process(self, imp: SisImport, plan: Plan) -> bool:
        """Run one import to its end; True if it ended aborted."""
        knobs = self._knobs
        job = JobContext(job_id=next(self._job_ids))
        imp.started_at = self._clock()
        imp.progress = 0
        imp.data["supplied_batches"] = imp.summary.supplied_batches
        self._commit(imp, "importing", job)
        imp.csv_attachments = self._extract(imp)
        imp.data["downloadable_attachment_ids"] = [a.id for a in imp.csv_attachments]
        if plan.stuck and plan.stuck_in == "importing":
            return await self._pause(imp, None)
        failing = plan.outcome in {"failed", "failed_with_messages"}
        importing = plan.importing_seconds
        if await self._work(
            imp, knobs.importing_seconds if importing is None else importing, 60 if failing else 99
        ):
            return True
        if plan.outcome == "aborted" and plan.abort_in == "importing":
            return self.abort_batch(imp)
        cleaned_up = plan.cleanup_phase(imp.options.batch_mode)
        if cleaned_up:
            imp.progress = 0
            self._commit(imp, "cleanup_batch", None, touch=False)
            if plan.stuck and plan.stuck_in == "cleanup_batch":
                return await self._pause(imp, None)
            if plan.outcome == "aborted":  # change_threshold exceeded: checked before deleting
                return self.abort_batch(imp)
            cleanup = knobs.cleanup_seconds if plan.cleanup_seconds is None else plan.cleanup_seconds
            if await self._work(imp, cleanup, 99):
                return True
        self._finish(imp, plan, job, cleaned_up)
        return False

    def _finish(self, imp: SisImport, plan: Plan, job: JobContext, cleaned_up: bool) -> None:
        count = self._knobs.messages_per_import if plan.messages is None else plan.messages
        warnings = count if plan.outcome == "imported_with_messages" else 0
        errors = count if plan.outcome == "failed_with_messages" else 0
        now = self._clock()
        for count, failure in ((warnings, False), (errors, True)):
            imp.errors += planned_errors(
                imp.id, imp.summary, count, failure=failure, ids=self._error_ids, at=now
            )
        imp.processing_warnings = listed(imp.errors, failure=False)
        imp.processing_errors = listed(imp.errors, failure=True)
        imp.data = finish_data(imp, cleaned_up=cleaned_up, warnings=warnings, errors=errors)
        if plan.outcome in {"imported", "imported_with_messages"}:
            imp.progress = 100
        imp.ended_at = self._clock()
        self._commit(imp, plan.outcome, job)
        if warnings or errors:
            delay = plan.errors_attachment_seconds
            delay = self._knobs.errors_attachment_seconds if delay is None else delay
            self._spawn(self._write_errors_attachment(imp, delay), f"sandbox-errors-{imp.id}")

    async def _write_errors_attachment(self, imp: SisImport, seconds: float) -> None:
        # A later job writes the file, so a client that fetches the import the moment it sees the
        # final state may not find it yet (CANVAS.md §5).
        await asyncio.sleep(self._knobs.scaled(seconds))
        name = f"sis_errors_attachment_{imp.id}.csv"
        imp.errors_attachment = self.files.add(imp.account_id, name, "text/csv", errors_file(imp.errors))
        imp.updated_at = self._clock()

    # ---- restore_states --------------------------------------------------------------------------
    def restore_states(self, imp: SisImport, *, partial: bool) -> Progress | None:
        """`SisBatch#restore_states_later`: a Progress now, the job later. None if unfinished.

        Canvas queues a restore of any batch; the sandbox refuses one that has not finished, so the
        SIS job and the restore job never write the same row at once.
        """
        if imp.workflow_state not in FINISHED | RESTORED:
            return None
        now = self._clock()
        progress = Progress(next(self._progress_ids), imp.id, "sis_batch_state_restore", now, now)
        self.progresses[progress.id] = progress
        self._spawn(self._restore(imp, progress, partial), f"sandbox-restore-{imp.id}")
        return progress

    async def _restore(self, imp: SisImport, progress: Progress, partial: bool) -> None:
        job = JobContext(job_id=next(self._job_ids), job_tag=RESTORE_JOB_TAG)
        progress.workflow_state, progress.updated_at = "running", self._clock()
        self._commit(imp, "restoring", job)
        await asyncio.sleep(self._knobs.scaled(self._knobs.restore_seconds))
        for stat in imp.data.get("statistics", {}).values():
            if isinstance(stat, dict):
                stat["restored"] = stat.get("deleted", 0) + stat.get("created", 0)
        progress.workflow_state, progress.completion, progress.updated_at = "completed", 100.0, self._clock()
        self._commit(imp, "partially_restored" if partial else "restored", job)
