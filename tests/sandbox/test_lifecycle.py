"""Canvas's import lifecycle rules (docs/canvas.md, "States, and the ones that send no
event"), seen through the API and the queue."""

from __future__ import annotations

import aiohttp
import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsInbox
from consumer.sandbox.waiting import wait_until
from tests.support.sandbox_http import call, post_import


async def test_a_second_import_waits_in_created_while_the_first_is_importing(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, importing_seconds=0.4)
    first = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(first, "importing")

    second = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(first, "imported")

    ended = canvas.imports[first].history[-1][1]
    started = await canvas.wait_for_state(second, "importing", "imported")
    assert dict(started.history)["importing"] >= ended
    assert [s for s, _ in canvas.imports[second].history[:2]] == ["initializing", "created"]


async def test_a_waiting_import_is_listed_as_created(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, stuck=True)
    first = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(first, "importing")
    second = (await post_import(http, canvas)).body["id"]

    answer = await call(http, canvas, "GET", f"/api/v1/accounts/1/sis_imports/{second}")
    running = await call(http, canvas, "GET", "/api/v1/accounts/1/sis_imports/importing")

    assert answer.body["workflow_state"] == "created"
    assert [i["id"] for i in running.body["sis_imports"]] == [first]


async def test_two_root_accounts_import_in_parallel(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, importing_seconds=1.0)
    canvas.plan(2, importing_seconds=1.0)
    one = (await post_import(http, canvas, 1)).body["id"]
    two = (await post_import(http, canvas, 2)).body["id"]

    await wait_until(
        lambda: canvas.imports[one].workflow_state == canvas.imports[two].workflow_state == "importing",
        timeout=2.0,
    )


@pytest.mark.parametrize("knobs", [Knobs(after_abort_seconds=0.5)])
async def test_after_an_abort_the_next_import_starts_after_a_delay(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, stuck=True)
    first = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(first, "importing")
    second = (await post_import(http, canvas)).body["id"]

    assert await canvas.abort(first)
    await canvas.wait_for_state(second, "importing", "imported", timeout=3.0)

    aborted_at = dict(canvas.imports[first].history)["aborted"]
    started_at = dict(canvas.imports[second].history)["importing"]
    assert (started_at - aborted_at).total_seconds() >= 0.5


async def test_a_stuck_import_blocks_its_account_until_aborted(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, stuck=True)
    first = (await post_import(http, canvas)).body["id"]
    second = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(first, "importing")
    other = (await post_import(http, canvas, 2)).body["id"]

    await canvas.wait_for_state(other, "imported")  # plenty of time for account 1 to have moved

    assert canvas.imports[first].workflow_state == "importing"
    assert canvas.imports[second].workflow_state == "created"


async def test_multi_term_batch_mode_without_change_threshold_leaves_an_orphaned_initializing(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas, fields={"multi_term_batch_mode": "1"})
    canvas.plan(1)  # a normal import after it proves the runner moved on without it
    after = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(after, "imported")
    await canvas.flush()

    events = await inbox.collect(len(canvas.published))

    assert answer.status == 400
    assert answer.body == {"message": "change_threshold is required to use multi term_batch mode."}
    (orphan,) = [i for i in canvas.imports.values() if i.id != after]
    assert orphan.workflow_state == "initializing"
    orphan_events = [e for e in events if e["body"]["sis_batch_id"] == str(orphan.id)]
    assert [e["body"]["workflow_state"] for e in orphan_events] == ["initializing"]


async def test_a_batch_mode_term_that_does_not_exist_is_refused_before_saving(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await post_import(http, canvas, fields={"batch_mode": "1", "batch_mode_term_id": "999"})

    assert answer.status == 400
    assert canvas.imports == {}
    assert canvas.emitted == []


async def test_abort_of_a_finished_import_is_404(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported")

    answer = await call(http, canvas, "PUT", f"/api/v1/accounts/1/sis_imports/{import_id}/abort")

    assert answer.status == 404
    assert canvas.imports[import_id].workflow_state == "imported"


async def test_abort_all_pending_aborts_waiting_imports_but_not_the_running_one(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, importing_seconds=0.5)
    running = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(running, "importing")
    waiting = (await post_import(http, canvas)).body["id"]

    answer = await call(http, canvas, "PUT", "/api/v1/accounts/1/sis_imports/abort_all_pending")

    assert answer.body == {"aborted": True}
    assert canvas.imports[waiting].workflow_state == "aborted"
    assert canvas.imports[waiting].progress == 100
    assert (await canvas.wait_for_state(running, "imported")).workflow_state == "imported"


async def test_errors_attachment_appears_only_after_the_final_state(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, "imported_with_messages", errors_attachment_seconds=0.3, messages=30)
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported_with_messages")
    path = f"/api/v1/accounts/1/sis_imports/{import_id}"

    at_finish = (await call(http, canvas, "GET", path)).body
    await wait_until(lambda: canvas.imports[import_id].errors_attachment is not None, timeout=2.0)
    later = (await call(http, canvas, "GET", path)).body

    assert "errors_attachment" not in at_finish
    assert at_finish["data"]["counts"]["warning_count"] == 30
    assert len(at_finish["processing_warnings"]) == 25  # 24 and an "and 6 more" row
    assert at_finish["processing_warnings"][-1][0].startswith("and 6 more warnings")
    assert later["errors_attachment"]["display_name"] == f"sis_errors_attachment_{import_id}.csv"


async def test_a_failed_import_ends_below_100_with_its_errors(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, "failed_with_messages", messages=2)
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "failed_with_messages")

    body = (await call(http, canvas, "GET", f"/api/v1/accounts/1/sis_imports/{import_id}")).body

    assert body["progress"] < 100
    assert body["ended_at"] is not None
    assert body["data"]["counts"]["error_count"] == 2
    assert body["processing_errors"][0][0] == "users.csv"


async def test_progress_stays_at_99_until_the_import_finishes(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.plan(1, cleanup=True, cleanup_seconds=0.4)
    import_id = (await post_import(http, canvas)).body["id"]

    imp = await canvas.wait_for_state(import_id, "cleanup_batch")
    assert imp.progress < 100
    assert (await canvas.wait_for_state(import_id, "imported")).progress == 100


async def test_with_jobs_stopped_imports_stay_created_until_jobs_start(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.stop_jobs(1)
    import_id = (await post_import(http, canvas)).body["id"]
    other = (await post_import(http, canvas, 2)).body["id"]
    await canvas.wait_for_state(other, "imported")

    assert canvas.imports[import_id].workflow_state == "created"
    canvas.start_jobs(1)
    await canvas.wait_for_state(import_id, "imported")


@pytest.mark.parametrize(
    "knobs", [Knobs(seed=7, failed_rate=0.5, warning_rate=0.5, queue_seconds=0, importing_seconds=0.02)]
)
async def test_outcome_rates_decide_unplanned_imports_reproducibly(
    canvas: SimulatedCanvas, knobs: Knobs
) -> None:
    outcomes = []
    for _ in range(6):
        imp = await canvas.start_import(2)
        await canvas.wait_for_state(imp.id, "failed", "imported_with_messages")
        outcomes.append(imp.workflow_state)

    async with SimulatedCanvas(knobs=knobs) as again:
        replay = []
        for _ in range(6):
            imp = await again.start_import(2)
            await again.wait_for_state(imp.id, "failed", "imported_with_messages")
            replay.append(imp.workflow_state)

    assert set(outcomes) == {"failed", "imported_with_messages"}
    assert replay == outcomes
