"""Lost, duplicated and reordered events on demand, as they reach SQS (docs/canvas.md, "Delivery
guarantees")."""

from __future__ import annotations

import aiohttp
import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsInbox
from tests.support.sandbox_http import post_import


@pytest.mark.parametrize("knobs", [Knobs(loss_rate=1.0)])
async def test_loss_knob_drops_events_and_logs_them(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported")
    await canvas.flush()

    assert await inbox.receive() == 0
    assert canvas.published == []
    assert [e.state for e in canvas.dropped] == ["initializing", "created", "importing", "imported"]


@pytest.mark.parametrize("knobs", [Knobs(duplicate_rate=1.0)])
async def test_duplication_knob_sends_every_event_twice(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported")
    await canvas.flush()

    events = await inbox.collect(8)

    states = [e["body"]["workflow_state"] for e in events]
    assert sorted(states) == sorted(["initializing", "created", "importing", "imported"] * 2)


async def test_a_planned_loss_drops_exactly_that_event(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    canvas.plan(1, lose=["created"])
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported")
    await canvas.flush()

    events = await inbox.collect(3)

    assert [e["body"]["workflow_state"] for e in events] == ["initializing", "importing", "imported"]


async def test_a_delayed_event_is_overtaken_by_later_ones(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    # Ten times the import's own pace (0.17 s from `created` to `imported`): the two later events
    # are sent first even when a busy machine makes each send slow.
    canvas.plan(1, delay={"created": 2.0})
    import_id = (await post_import(http, canvas)).body["id"]
    await canvas.wait_for_state(import_id, "imported")
    await canvas.flush()

    events = await inbox.collect(4)

    states = [e["body"]["workflow_state"] for e in events]
    assert sorted(states) == ["created", "imported", "importing", "initializing"]
    # `importing` follows `created` by a few hundredths of a second: only the delay puts it first.
    # (Whether `imported` overtakes too depends on how busy the machine is.)
    assert states.index("importing") < states.index("created")


@pytest.mark.parametrize("knobs", [Knobs(seed=3, delivery_jitter_seconds=0.3, importing_seconds=0.05)])
async def test_jitter_can_reorder_events(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    for _ in range(3):
        import_id = (await post_import(http, canvas)).body["id"]
        await canvas.wait_for_state(import_id, "imported")
    await canvas.flush()

    events = await inbox.collect(12)

    assert [d.seq for d in canvas.published] != sorted(d.seq for d in canvas.published)
    assert len(events) == 12


async def test_without_a_publisher_events_are_only_captured() -> None:
    async with SimulatedCanvas() as canvas:
        imp = await canvas.start_import(1)
        await canvas.wait_for_state(imp.id, "imported")
        await canvas.flush()

    assert [d.state for d in canvas.events_for(imp.id)] == [
        "initializing",
        "created",
        "importing",
        "imported",
    ]


async def test_a_failing_publisher_loses_the_event_and_keeps_going() -> None:
    async def broken(body: str) -> None:
        raise ConnectionError("queue endpoint down")

    async with SimulatedCanvas(publish=broken) as canvas:
        imp = await canvas.start_import(1)
        await canvas.wait_for_state(imp.id, "imported")
        await canvas.flush()

    assert canvas.published == []
    assert len(canvas.failures) == 4
