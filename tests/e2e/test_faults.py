"""Faults against the real `sis-consumer run`: the SQS endpoint down for 30 s mid-drain, the store
locked by another process, Canvas answering error pages, bytes that are not UTF-8, nothing at all,
or 401, and SIGKILL in the middle of batches.

After each: every import ends right, nothing is counted twice, the process is healthy (`/livez`,
`/readyz`), and while the fault lasted it showed in a metric and a log line. README "Failure
modes" says the same for people.
"""

from __future__ import annotations

import functools
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from consumer.sandbox.faults import Fault
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.e2e.daemon import Daemon
from tests.e2e.test_daemon import send_all
from tests.e2e.test_shutdown import daemons, env, finished_in_journal, many_imports, queue_counts
from tests.reconcile.conftest import CanvasFactory, DaemonFactory, canvas_for, daemon_for
from tests.reconcile.helpers import lines
from tests.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
__all__ = ["canvas_for", "daemon_for", "daemons", "env"]  # fixtures of other e2e tests, used here too

OUTAGE = 30.0
"""How long the SQS endpoint stays down."""


def probe(daemon: Daemon, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def healthy(daemon: Daemon) -> bool:
    assert daemon.process is not None
    assert daemon.process.poll() is None, daemon.output()
    return probe(daemon, "/livez") == 200 and probe(daemon, "/readyz") == 200


def events(daemon: Daemon, event: str) -> list[dict[str, object]]:
    return [line for line in daemon.log_lines() if line.get("event") == event]


def all_imported(daemon: Daemon, n: int) -> bool:
    return {i["sis_batch_id"]: i["state"] for i in daemon.imports()} == dict.fromkeys(
        range(1, n + 1), "imported"
    )


@pytest.fixture
def own_sqs() -> Iterator[LocalSqs]:
    """An SQS endpoint of this test's own, which it may stop and start again on the same port."""
    with LocalSqs() as sqs:
        yield sqs


def under_way(daemon: Daemon) -> bool:
    return daemon.sample("sis_consumer_messages_total") >= 15


@pytest.fixture
def queues(local_sqs: LocalSqs) -> Queues:
    """A queue pair with the template's redrive policy (10 receives), not the sandbox's 3: the
    faults here make messages come back several times, as they do in production."""
    return local_sqs.create_queues(max_receive_count=10)


def test_sqs_down_for_30_seconds_mid_drain(
    own_sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, daemons: list[Daemon]
) -> None:
    # A name of its own: moto's queues are global to the process, and the session's server made
    # `canvas-live-events-sandbox-1` already.
    queues = own_sqs.create_queues(f"canvas-live-events-outage-{uuid.uuid4().hex[:8]}", max_receive_count=10)
    for key, value in queues.env().items():
        monkeypatch.setenv(key, value)
    send_all(queues, many_imports(40))
    daemon = Daemon(queues, tmp_path, SIS_CONSUMER_POLLERS="2", SIS_CONSUMER_VISIBILITY_TIMEOUT="5")
    daemons.append(daemon)
    daemon.start()
    wait_until(lambda: daemon.sample("sis_consumer_messages_total") >= 20, what="the drain to start")

    own_sqs._server.stop()
    down_at = time.monotonic()
    try:
        wait_until(lambda: events(daemon, "poll.failed"), timeout=OUTAGE, what="a poll.failed line")
        receives = "sis_consumer_sqs_requests_total"
        failed = daemon.sample(receives, operation="ReceiveMessage") - daemon.sample(
            receives, operation="ReceiveMessage", result="ok"
        )
        assert failed > 0
        wait_until(lambda: probe(daemon, "/readyz") == 503, timeout=OUTAGE, what="/readyz to say why")
        assert probe(daemon, "/livez") == 200  # an outage shorter than STALL_AFTER is not a stall
        assert queue_counts_when_up(own_sqs, queues) is None
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))  # the outage lasts its 30 s
    finally:
        own_sqs._server = ThreadedMotoServer(ip_address="127.0.0.1", port=own_sqs.port, verbose=False)
        own_sqs._server.start()

    wait_until(lambda: queue_counts(queues) == (0, 0), timeout=90, what="the rest drained")
    wait_until(lambda: healthy(daemon), timeout=60, what="/livez and /readyz 200 again")
    assert all_imported(daemon, 40)
    assert daemon.sample("canvas_sis_imports_finished_total") == 40
    assert finished_in_journal(daemon.db) == dict.fromkeys(range(1, 41), 1)
    assert daemon.stop() == 0


def queue_counts_when_up(sqs: LocalSqs, queues: Queues) -> tuple[int, int] | None:
    """The queue's counts, or None while its endpoint is down."""
    try:
        return queue_counts(queues)
    except Exception:  # botocore's EndpointConnectionError: the endpoint is down, as intended
        return None


def test_store_locked_by_another_process_for_a_while(
    env: Queues, tmp_path: Path, daemons: list[Daemon]
) -> None:
    queues = env
    daemon = Daemon(queues, tmp_path)
    daemons.append(daemon)
    daemon.start()
    holder = sqlite3.connect(daemon.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock: no write can commit
    try:
        send_all(queues, many_imports(10))
        wait_until(
            lambda: daemon.sample("sis_consumer_messages_total", outcome="retried") >= 10,
            timeout=30,
            what="messages retried while the store is locked",
        )
        [retry, *_] = events(daemon, "sis_batch.retry")
        assert "locked" in str(retry["error"])
        assert daemon.sample("sis_consumer_messages_total", outcome="deleted") < len(many_imports(10))
        assert probe(daemon, "/livez") == 200
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    wait_until(lambda: all_imported(daemon, 10), timeout=60, what="every import after the lock")
    wait_until(lambda: queue_counts(queues) == (0, 0), timeout=60, what="the queue drained")
    assert healthy(daemon)
    assert daemon.sample("canvas_sis_imports_finished_total") == 10
    assert finished_in_journal(daemon.db) == dict.fromkeys(range(1, 11), 1)
    assert daemon.stop() == 0


CANVAS_FAULTS: dict[Fault, tuple[str, str]] = {
    "error_page": ("503", "reconcile.failed"),
    "bad_bytes": ("502", "reconcile.failed"),
    "hang": ("error", "reconcile.failed"),
    "unauthorized": ("401", "reconcile.refused"),
}


@pytest.mark.parametrize("fault", sorted(CANVAS_FAULTS))
def test_canvas_misbehaving_while_an_import_is_aborted_silently(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory, fault: Fault
) -> None:
    status, logged = CANVAS_FAULTS[fault]
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_CANVAS_TIMEOUT="1s")
    wait_until(lambda: lines(daemon, "reconcile.account"), what="the reconciler to know its account")
    canvas.read(lambda c: c.plan(1, "aborted", importing_seconds=1.0))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "importing")
    canvas.read(lambda c: c.faults.start(fault))
    try:
        canvas.wait_for_state(batch, "aborted", timeout=15)  # silent: no event tells the daemon
        wait_until(
            lambda: daemon.sample("sis_consumer_canvas_requests_total", status=status) > 0,
            timeout=30,
            what=f"Canvas answering {status} in the metrics",
        )
        wait_until(lambda: lines(daemon, logged, batch), timeout=30, what=f"a {logged} line")
        assert not daemon.imports()[0]["finished_at"]
    finally:
        canvas.read(lambda c: c.faults.stop())

    wait_until(
        lambda: daemon.sample("canvas_sis_imports_finished_total", state="aborted") == 1,
        timeout=60,
        what="the silent abort found once Canvas answers again",
    )
    wait_until(lambda: lines(daemon, "import.finished", batch), timeout=60, what="its result fetched")
    assert [(i["sis_batch_id"], i["state"]) for i in daemon.imports()] == [(batch, "aborted")]
    assert daemon.sample("canvas_sis_imports_finished_total") == 1
    assert healthy(daemon)
    assert not lines(daemon, "daemon.crashed")
    assert daemon.stop() == 0


def test_sigkill_in_the_middle_of_batches_three_times(
    env: Queues, tmp_path: Path, daemons: list[Daemon]
) -> None:
    queues = env
    send_all(queues, many_imports(40))
    for _ in range(3):
        daemon = Daemon(queues, tmp_path, SIS_CONSUMER_POLLERS="2", SIS_CONSUMER_VISIBILITY_TIMEOUT="3")
        daemons.append(daemon)
        daemon.start()
        wait_until(functools.partial(under_way, daemon), what="batches under way")
        daemon.kill()
        assert queue_counts(queues) != (0, 0), "the drain finished before the kill: nothing was proved"

    last = Daemon(queues, tmp_path, SIS_CONSUMER_VISIBILITY_TIMEOUT="3")
    daemons.append(last)
    last.start()
    wait_until(lambda: queue_counts(queues) == (0, 0), timeout=90, what="the queue drained after the kills")
    wait_until(lambda: all_imported(last, 40), timeout=30, what="every import imported")
    assert finished_in_journal(last.db) == dict.fromkeys(range(1, 41), 1)
    with sqlite3.connect(last.db) as conn:
        finishes = conn.execute("SELECT COUNT(*) FROM outbox WHERE effects LIKE '%finished%'").fetchone()[0]
    assert finishes == 40  # one outbox entry per finish: whichever process committed it counted it
    assert healthy(last)
    assert len(events(last, "daemon.started")) == 1
    assert last.stop() == 0
