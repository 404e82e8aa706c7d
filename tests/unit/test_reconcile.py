"""`due_for_check`: which quiet imports the reconciler asks Canvas about, and in what order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumer.core.reconcile import due_for_check
from consumer.core.tracker import ImportRecord, Observation, State, apply

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
AFTER = 600.0
ACCOUNT = "acct-a"


def quiet(batch: int, seconds: float, account: str = ACCOUNT) -> ImportRecord:
    """An import whose last news came `seconds` before NOW."""
    at = NOW - timedelta(seconds=seconds)
    return apply(None, Observation(account, batch, State.CREATED, at), at).record


def due(records: list[ImportRecord], checked: dict[tuple[str, int], datetime] | None = None) -> list[int]:
    found = due_for_check(
        records, account=ACCOUNT, now=NOW, reconcile_after=AFTER, last_checked=checked or {}
    )
    return [r.sis_batch_id for r in found]


def test_an_import_is_due_once_it_has_had_no_news_for_reconcile_after() -> None:
    assert due([quiet(1, AFTER), quiet(2, AFTER - 1)]) == [1]


def test_an_import_checked_less_than_reconcile_after_ago_is_not_due_however_old_its_news() -> None:
    record = quiet(1, 10 * AFTER)
    assert due([record], {record.key: NOW - timedelta(seconds=AFTER - 1)}) == []
    assert due([record], {record.key: NOW - timedelta(seconds=AFTER)}) == [1]


def test_imports_of_other_accounts_are_never_due() -> None:
    assert due([quiet(1, 10 * AFTER, account="acct-b")]) == []


def test_the_longest_quiet_comes_first() -> None:
    records = [quiet(1, 2 * AFTER), quiet(2, 3 * AFTER), quiet(3, 2 * AFTER)]
    checked = {records[1].key: NOW - timedelta(seconds=AFTER)}  # 2: quiet since its check
    assert due(records, checked) == [1, 3, 2]
