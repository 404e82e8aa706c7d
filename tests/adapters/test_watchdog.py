"""The watchdog against a real SQLite store: learned thresholds (from the runs the store keeps, as
the daemon learns them), the allowlist, and what a page needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.core.learned import Learning
from consumer.core.stuck import StuckThresholds
from consumer.core.tracker import State
from consumer.daemon.lease import SoleLeader
from consumer.daemon.watchdog import Watchdog
from consumer.observability.metrics import Metrics
from tests.support.records import ACCOUNT, KEEP_JOURNAL, NOW, OTHER_ACCOUNT, T0, obs

FIXED = StuckThresholds()  # running_too_long 2h
CANVAS = "https://canvas.example.edu"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(tmp_path / "state.db", owner="test", retention_seconds=KEEP_JOURNAL) as opened:
        yield opened


def watchdog(
    store: SqliteStore,
    clock: Clock,
    accounts: frozenset[str] = frozenset(),
    expect_success: tuple[str, ...] = (),
    on_refreshed: Callable[[], None] = lambda: None,
) -> tuple[Watchdog, CollectorRegistry]:
    registry = CollectorRegistry()
    dog = Watchdog(
        store,
        Metrics(registry),
        clock,
        interval=1.0,
        limits=FIXED,
        leader=SoleLeader(),
        learning=Learning(after=5, floor=900, ceiling=43200),
        accounts=accounts,
        canvas_url=CANVAS,
        expect_success=expect_success,
        on_refreshed=on_refreshed,
    )
    return dog, registry


DAY = 24 * 60


async def run(store: SqliteStore, batch: int, created: float, started: float, finished: float) -> None:
    """A successful import, in minutes after T0: created, importing, imported."""
    for state, minute in ((State.CREATED, created), (State.IMPORTING, started), (State.IMPORTED, finished)):
        await store.apply(obs(state, minute, batch=batch), NOW)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"account": ACCOUNT, **labels})


async def one_pass(store: SqliteStore, minutes: float) -> CollectorRegistry:
    """The metrics of a watchdog's first pass at T0 + `minutes`."""
    dog, registry = watchdog(store, Clock(T0 + timedelta(minutes=minutes)))
    await dog.tick()
    return registry


def verdict(registry: CollectorRegistry, batch: int) -> str | None:
    """The reason of `batch`'s `canvas_sis_import_stuck_info` series, if it has one."""
    for reason in ("never_started", "running_too_long"):
        labels = {"account_id": "1", "sis_batch_id": str(batch), "reason": reason}
        if sample(registry, "canvas_sis_import_stuck_info", **labels):
            return reason
    return None


async def five_minute_imports(store: SqliteStore, account: str = ACCOUNT, count: int = 5) -> None:
    for batch in range(1, count + 1):
        start = batch * 60
        await store.apply(obs(State.IMPORTING, start, batch=batch, account=account), NOW)
        await store.apply(obs(State.IMPORTED, start + 5, batch=batch, account=account), NOW)


async def test_a_fast_account_pages_by_its_learned_threshold_long_before_the_fixed_one(
    store: SqliteStore,
) -> None:
    await five_minute_imports(store)
    await store.apply(obs(State.IMPORTING, 1000, batch=99), NOW)  # imported in 5 minutes, 5 times
    clock = Clock(T0 + timedelta(minutes=1000, seconds=901))
    dog, registry = watchdog(store, clock)

    with capture_logs() as logs:
        await dog.tick()

    labels = {"account": ACCOUNT, "account_id": "1", "sis_batch_id": "99", "reason": "running_too_long"}
    assert registry.get_sample_value("canvas_sis_import_stuck_info", labels) == 1
    threshold = {"account": ACCOUNT, "reason": "running_too_long"}
    assert registry.get_sample_value("canvas_sis_import_stuck_threshold_seconds", threshold) == 900
    (stuck,) = [line for line in logs if line["event"] == "import.stuck"]
    assert stuck == {
        "event": "import.stuck",
        "log_level": "warning",
        "account": ACCOUNT,
        "account_id": "1",
        "sis_batch_id": 99,
        "reason": "running_too_long",
        "threshold_seconds": 900.0,
        "canvas_ui_url": f"{CANVAS}/accounts/1/sis_import",
        "canvas_api_url": f"{CANVAS}/api/v1/accounts/1/sis_imports/99",
    }


async def test_a_second_short_of_its_learned_threshold_an_import_is_not_stuck(store: SqliteStore) -> None:
    await five_minute_imports(store)
    await store.apply(obs(State.IMPORTING, 1000, batch=99), NOW)
    dog, registry = watchdog(store, Clock(T0 + timedelta(minutes=1000, seconds=899)))

    await dog.tick()

    stuck = {"account": ACCOUNT, "reason": "running_too_long"}
    assert registry.get_sample_value("canvas_sis_imports_stuck", stuck) is None


async def test_an_account_with_too_little_history_keeps_the_fixed_threshold(store: SqliteStore) -> None:
    await five_minute_imports(store, count=4)
    await store.apply(obs(State.IMPORTING, 1000, batch=99), NOW)
    dog, registry = watchdog(store, Clock(T0 + timedelta(minutes=1000, seconds=901)))

    await dog.tick()

    threshold = {"account": ACCOUNT, "reason": "running_too_long"}
    assert registry.get_sample_value("canvas_sis_import_stuck_threshold_seconds", threshold) == 7200
    assert registry.get_sample_value("canvas_sis_imports_stuck", {**threshold}) is None


async def test_accounts_outside_the_allowlist_are_not_watched(store: SqliteStore) -> None:
    """Imports recorded before the allowlist (or by `submit`) page nobody and export no gauge."""
    await five_minute_imports(store, account=OTHER_ACCOUNT)
    await store.apply(obs(State.IMPORTING, 0, batch=98, account=OTHER_ACCOUNT), NOW)
    await store.apply(obs(State.IMPORTED, 30, batch=1), NOW)
    dog, registry = watchdog(store, Clock(T0 + timedelta(days=2)), accounts=frozenset({ACCOUNT}))

    await dog.tick()

    other = {"account": OTHER_ACCOUNT}
    assert registry.get_sample_value("canvas_sis_import_last_success_timestamp_seconds", other) is None
    assert (
        registry.get_sample_value("canvas_sis_imports_in_progress", {**other, "state": "importing"}) is None
    )
    assert (
        registry.get_sample_value("canvas_sis_imports_stuck", {**other, "reason": "running_too_long"}) is None
    )
    success = registry.get_sample_value(
        "canvas_sis_import_last_success_timestamp_seconds", {"account": ACCOUNT}
    )
    assert success == (T0 + timedelta(minutes=30)).timestamp()


async def test_each_pass_stamps_the_gauges_fresh_and_tells_livez(store: SqliteStore) -> None:
    clock = Clock(T0)
    refreshes: list[None] = []
    dog, registry = watchdog(store, clock, on_refreshed=lambda: refreshes.append(None))
    assert registry.get_sample_value("sis_consumer_gauges_refreshed_timestamp_seconds") == 0

    await dog.tick()
    clock.at = T0 + timedelta(seconds=5)
    await dog.tick()

    assert (
        registry.get_sample_value("sis_consumer_gauges_refreshed_timestamp_seconds") == clock.at.timestamp()
    )
    assert len(refreshes) == 2


async def test_waiting_behind_the_accounts_own_import_teaches_no_long_wait(store: SqliteStore) -> None:
    """Five nights of two imports created together: the second waits 3 h behind the first and
    starts 30 s after it. A stalled Canvas job queue must still be flagged at the floor (15 min),
    not after twice 3 h."""
    for night in range(5):
        start = night * DAY
        await run(store, 2 * night + 1, start, start + 1, start + 180)
        await run(store, 2 * night + 2, start, start + 180.5, start + 190)
    await store.apply(obs(State.CREATED, 5 * DAY, batch=99), NOW)  # nothing ahead of it

    registry = await one_pass(store, 5 * DAY + 16)

    assert sample(registry, "canvas_sis_import_stuck_threshold_seconds", reason="never_started") == 900
    assert verdict(registry, 99) == "never_started"


async def test_an_import_freed_by_the_one_ahead_of_it_is_not_stuck_for_its_wait_behind_it(
    store: SqliteStore,
) -> None:
    """It waited 3 h behind a running import (normal); its wait for Canvas starts when that one
    finishes, in this process and after a restart alike."""
    await store.apply(obs(State.IMPORTING, 0, batch=1), NOW)
    await store.apply(obs(State.CREATED, 0, batch=2), NOW)
    clock = Clock(T0 + timedelta(minutes=179))
    dog, registry = watchdog(store, clock)
    await dog.tick()
    await store.apply(obs(State.IMPORTED, 180, batch=1), NOW)

    clock.at = T0 + timedelta(minutes=181)
    await dog.tick()
    restarted, after_restart = watchdog(store, clock)
    await restarted.tick()
    assert (verdict(registry, 2), verdict(after_restart, 2)) == (None, None)

    clock.at = T0 + timedelta(minutes=180 + 31)  # 31 minutes free, still waiting: Canvas's queue
    await dog.tick()
    assert verdict(registry, 2) == "never_started"


async def test_one_slow_success_does_not_hide_a_hang_for_the_next_thirty_nights(store: SqliteStore) -> None:
    """Thirty one-hour imports, one of them 5 h: an import importing for 2 h 1 min is stuck."""
    for night in range(30):
        minutes = 300 if night == 12 else 60
        await run(store, night + 1, night * DAY, night * DAY + 1, night * DAY + 1 + minutes)
    await store.apply(obs(State.IMPORTING, 30 * DAY, batch=99), NOW)

    registry = await one_pass(store, 30 * DAY + 121)

    assert sample(registry, "canvas_sis_import_stuck_threshold_seconds", reason="running_too_long") == 7200
    assert verdict(registry, 99) == "running_too_long"


async def test_a_slow_account_with_few_successes_is_not_stuck_at_the_fixed_two_hours(
    store: SqliteStore,
) -> None:
    """Two nights of 3-hour imports so far: the third night's is normal at 2 h 5 min."""
    for night in range(2):
        await run(store, night + 1, night * DAY, night * DAY + 1, night * DAY + 181)
    await store.apply(obs(State.IMPORTING, 2 * DAY, batch=99), NOW)

    registry = await one_pass(store, 2 * DAY + 125)

    assert (
        sample(registry, "canvas_sis_import_stuck_threshold_seconds", reason="running_too_long") == 9 * 3600
    )
    assert verdict(registry, 99) is None


async def test_a_scheduled_account_is_expected_to_succeed_from_the_first_pass_ever(
    store: SqliteStore,
) -> None:
    """It never succeeded (go-live): its schedule counts from the first daemon that knew it, not
    from the latest restart; an account without a schedule is expected nothing."""
    dog, registry = watchdog(store, Clock(T0), expect_success=(ACCOUNT,))
    await dog.tick()
    restarted, after_restart = watchdog(store, Clock(T0 + timedelta(hours=30)), expect_success=(ACCOUNT,))
    await restarted.tick()

    since = "canvas_sis_import_expected_success_since_timestamp_seconds"
    assert sample(registry, since) == sample(after_restart, since) == T0.timestamp()
    assert after_restart.get_sample_value(since, {"account": OTHER_ACCOUNT}) is None
