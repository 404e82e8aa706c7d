"""The reconciler's rules, one tick at a time (`tests.support.reconciler_rig`): how often it asks Canvas
about a quiet import, and where each way of failing ends — the `sis_consumer_reconciliations_total`
result, the log line, and what the reconciler does next:

- 5xx or throttled after every retry: `error`, `reconcile.failed`; the tick ends (the other imports
  wait for the next tick), and that import is asked again after RECONCILE_AFTER.
- 404: `not_found`, `reconcile.not_found`; the tick goes on.
- an answer it cannot use: `error`, `reconcile.unusable_answer`; the record is untouched, the tick
  goes on.
- `accounts/self` fails: `reconcile.account_unknown`; asked again with backoff, and no import is
  asked about meanwhile.
- the tick itself fails (the store): `reconcile.tick_failed`, no result; the loop goes on and the
  import is asked again after RECONCILE_AFTER.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from consumer.core.tracker import State
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.canvas_thread import ACCOUNT_ID
from tests.support.faults import Fault, without
from tests.support.reconciler_rig import ATTEMPTS, RECONCILE_AFTER, Rig, open_rig
from tests.support.waiting import await_until

EVERY_LOOKUP = r"/sis_imports/\d+$"


@pytest.fixture
async def rig(canvas: SimulatedCanvas, tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(canvas, tmp_path) as opened:
        yield opened


def events(logs: list[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [line for line in logs if line["event"] == name]


async def test_a_quiet_import_is_asked_about_at_most_once_per_reconcile_after(rig: Rig) -> None:
    batch = await rig.waiting_import()
    await rig.learn_account()

    await rig.tick()
    assert rig.asked(batch) == [200]

    await rig.tick()  # at once
    rig.clock.advance(RECONCILE_AFTER - 1)
    await rig.tick()  # a second early
    assert rig.asked(batch) == [200]

    rig.clock.advance(1)
    await rig.tick()
    assert rig.asked(batch) == [200, 200]
    assert rig.results() == {"unchanged": 2}


UNAVAILABLE = [
    pytest.param(
        Knobs(throttle_capacity=1, throttle_leak_per_second=0, throttle_status=status),
        None,
        f"throttled ({status})",
        status,
        id=f"throttled-{status}",
    )
    for status in (403, 429)
] + [
    pytest.param(Knobs(), Fault("GET", EVERY_LOOKUP, status=503, times=1000), "answered 503", 503, id="503"),
]


@pytest.mark.parametrize(("knobs", "fault", "says", "status"), UNAVAILABLE)
async def test_canvas_unavailable_after_every_retry_is_an_error_that_ends_the_tick(
    rig: Rig, fault: Fault | None, says: str, status: int
) -> None:
    """A bucket that never drains (only `accounts/self` gets through), or a Canvas that answers 503."""
    older = await rig.waiting_import(minutes_ago=10)
    newer = await rig.waiting_import(minutes_ago=5)
    await rig.learn_account()
    if fault is not None:
        rig.proxy.inject(fault)

    with capture_logs() as logs:
        await rig.tick()

    assert rig.asked(older) == [status] * ATTEMPTS  # the client's retries, all refused
    assert rig.asked(newer) == []  # the tick ended: no more requests into a refusing Canvas
    assert rig.results() == {"error": 1}
    assert rig.canvas_requests("sis_imports.show", str(status)) == ATTEMPTS
    [failed] = events(logs, "reconcile.failed")
    assert (failed["log_level"], failed["sis_batch_id"], failed["was"]) == ("warning", older, "created")
    assert says in failed["error"]
    assert await rig.state(older) is State.CREATED

    await rig.tick()  # the next tick: the other import's turn; the failed one waits
    assert rig.asked(newer) == [status] * ATTEMPTS
    assert rig.asked(older) == [status] * ATTEMPTS

    rig.clock.advance(RECONCILE_AFTER)
    await rig.tick()
    assert rig.asked(older) == [status] * 2 * ATTEMPTS


async def test_an_import_canvas_does_not_know_is_not_found_and_the_tick_goes_on(rig: Rig) -> None:
    unknown = 424242
    await rig.quiet(unknown, minutes_ago=10)
    known = await rig.waiting_import(minutes_ago=5)
    await rig.learn_account()

    with capture_logs() as logs:
        await rig.tick()

    assert rig.asked(unknown) == [404]  # a client error is not retried
    assert rig.asked(known) == [200]
    assert rig.results() == {"not_found": 1, "unchanged": 1}
    [line] = events(logs, "reconcile.not_found")
    assert (line["log_level"], line["sis_batch_id"], line["was"]) == ("warning", unknown, "created")
    assert await rig.state(unknown) is State.CREATED


def other_import(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "id": str(int(body["id"]) + 1000)}


UNUSABLE: dict[str, Callable[[dict[str, Any]], Any]] = {
    "unknown state": lambda body: {**body, "workflow_state": "exploded"},
    "another import's id": other_import,
    "no id": without("id"),
}


@pytest.mark.parametrize("rewrite", UNUSABLE.values(), ids=UNUSABLE.keys())
async def test_an_answer_that_cannot_be_used_is_an_error_and_changes_nothing(
    rig: Rig, rewrite: Callable[[dict[str, Any]], Any]
) -> None:
    """The import really was aborted; the answer that says so is unusable, so nothing may move."""
    rig.canvas.plan(ACCOUNT_ID, "aborted")
    aborted = (await rig.canvas.start_import(ACCOUNT_ID)).id
    await rig.canvas.wait_for_state(aborted, "aborted")
    await rig.quiet(aborted, minutes_ago=10)
    waiting = await rig.waiting_import(minutes_ago=5)
    await rig.learn_account()
    rig.proxy.inject(Fault("GET", rf"/sis_imports/{aborted}$", rewrite=rewrite))

    with capture_logs() as logs:
        await rig.tick()

    assert rig.asked(aborted) == [200]
    assert rig.asked(waiting) == [200]  # the tick went on
    assert rig.results() == {"error": 1, "unchanged": 1}
    [line] = events(logs, "reconcile.unusable_answer")
    assert (line["log_level"], line["sis_batch_id"], line["was"]) == ("warning", aborted, "created")
    assert await rig.state(aborted) is State.CREATED
    assert sorted(r.sis_batch_id for r in await rig.store.records()) == [aborted, waiting]


UNKNOWN_ACCOUNT = [
    pytest.param(Fault("GET", r"/accounts/self$", status=503, times=ATTEMPTS), [503] * ATTEMPTS, id="503"),
    pytest.param(Fault("GET", r"/accounts/self$", rewrite=without("uuid")), [200], id="no uuid"),
]


@pytest.mark.parametrize(("fault", "refused"), UNKNOWN_ACCOUNT)
async def test_no_import_is_asked_about_until_the_account_is_known(
    rig: Rig, fault: Fault, refused: list[int]
) -> None:
    """`accounts/self` fails once (after the client's retries): the reconciler asks again later."""
    batch = await rig.waiting_import()
    rig.proxy.inject(fault)

    with capture_logs() as logs:
        task = asyncio.create_task(rig.reconciler.run(rig.stop))
        await await_until(lambda: rig.asked(batch), timeout=15, what="the import asked about")
        rig.stop.set()
        await asyncio.wait_for(task, 5)

    [unknown] = events(logs, "reconcile.account_unknown")
    assert (unknown["log_level"], unknown["attempt"]) == ("warning", 1)
    [known] = events(logs, "reconcile.account")
    assert known["account"] == rig.account
    assert logs.index(unknown) < logs.index(known)
    paths = [a.path for a in rig.proxy.answered]
    before_the_first_lookup = paths[: paths.index(f"/api/v1/accounts/{ACCOUNT_ID}/sis_imports/{batch}")]
    assert set(before_the_first_lookup) == {"/api/v1/accounts/self"}
    assert rig.proxy.statuses("GET", r"/accounts/self$") == [*refused, 200]


async def test_a_tick_that_fails_is_logged_and_the_loop_goes_on(rig: Rig) -> None:
    """The store refuses the write of Canvas's answer; once it takes writes again, the import is asked
    about again after RECONCILE_AFTER, and the answer is recorded."""
    rig.canvas.plan(ACCOUNT_ID, "aborted")
    batch = (await rig.canvas.start_import(ACCOUNT_ID)).id
    await rig.canvas.wait_for_state(batch, "aborted")
    await rig.quiet(batch)
    store_pragma(rig, "PRAGMA query_only = ON")

    with capture_logs() as logs:
        task = asyncio.create_task(rig.reconciler.run(rig.stop))
        [failed] = await await_until(lambda: events(logs, "reconcile.tick_failed"), what="a failed tick")
        assert failed["log_level"] == "warning"
        assert "readonly" in failed["error"]
        assert rig.asked(batch) == [200]
        assert rig.results() == {}  # the answer was not recorded, so nothing says it was

        store_pragma(rig, "PRAGMA query_only = OFF")
        rig.clock.advance(RECONCILE_AFTER)
        await await_until(lambda: rig.results(), what="the import reconciled")
        rig.stop.set()
        await asyncio.wait_for(task, 5)

    assert rig.results() == {"finished_silently": 1}
    assert rig.asked(batch)[:2] == [200, 200]
    assert await rig.state(batch) is State.ABORTED
    assert len(events(logs, "reconcile.tick_failed")) == 1


def store_pragma(rig: Rig, sql: str) -> None:
    # The store runs its transactions on the event loop, on this one connection.
    rig.store._conn.execute(sql)
