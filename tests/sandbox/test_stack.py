"""The whole sandbox wired in one block, as `sis-consumer demo` uses it."""

from __future__ import annotations

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import LocalSqs
from consumer.sandbox.sqs_io import SqsInbox
from consumer.sandbox.stack import Sandbox


async def test_the_sandbox_publishes_canvas_events_to_its_queue(local_sqs: LocalSqs) -> None:
    async with Sandbox(knobs=Knobs(), sqs=local_sqs) as sandbox, SqsInbox(sandbox.queues) as inbox:
        imp = await sandbox.canvas.start_import(1)

        events = await inbox.collect(2)

        env = sandbox.env()
        assert {e["body"]["sis_batch_id"] for e in events} == {str(imp.id)}
        assert env["SIS_CONSUMER_CANVAS_URL"] == sandbox.canvas.url
        assert env["SIS_CONSUMER_CANVAS_TOKEN"] == sandbox.canvas.tokens[1]
        assert env["SIS_CONSUMER_QUEUE_URL"] == sandbox.queues.queue_url
