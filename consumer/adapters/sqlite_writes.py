"""The SQLite store's rows and writes: how a record maps to a row and back, the transaction, and
each transaction's body (or a part of one), on a connection the caller holds.
`store_sqlite.SqliteStore` decides when they run; these say what.

The rules they follow are the core's: `tracker.apply` changes a record, `tracker.join_event`
joins an import to the submission that created it. Here they are only loaded and saved.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from consumer.core.stuck import StuckReason, StuckVerdict, verdicts_changed
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import (
    AT_REST,
    Applied,
    Claimed,
    Effect,
    ImportRecord,
    Observation,
    Origin,
    State,
    apply,
    creator,
    decode_effects,
    encode_effects,
    join_answer,
    join_event,
    wants_submission,
    worth_journaling,
)
from consumer.errors import AlreadySubmitted

COLUMNS: Final = (
    "account, sis_batch_id, account_id, state, outcome, origin, at_rest, stage_times, "
    "first_seen_at, last_news_at, finished_at, submitted_at, request_id, developer_key_id, user_agent, "
    "last_event_at"
)


def ts(value: datetime | None) -> str | None:
    # Fixed-width UTC text sorts chronologically; isoformat() alone drops zero microseconds.
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def to_row(r: ImportRecord) -> tuple[Any, ...]:
    stage_times = {state.value: ts(at) for state, at in sorted(r.stage_times.items())}
    return (
        r.account,
        r.sis_batch_id,
        r.account_id,
        r.state.value,
        None if r.outcome is None else r.outcome.value,
        r.origin.value,
        int(r.state in AT_REST),
        json.dumps(stage_times),
        ts(r.first_seen_at),
        ts(r.last_news_at),
        ts(r.finished_at),
        ts(r.submitted_at),
        r.request_id,
        r.developer_key_id,
        r.user_agent,
        ts(r.last_event_at),
    )


def from_row(row: sqlite3.Row) -> ImportRecord:
    stage_times = {State(k): datetime.fromisoformat(v) for k, v in json.loads(row["stage_times"]).items()}
    first_seen, last_news = dt(row["first_seen_at"]), dt(row["last_news_at"])
    assert first_seen is not None
    assert last_news is not None
    return ImportRecord(
        account=row["account"],
        sis_batch_id=row["sis_batch_id"],
        account_id=row["account_id"],
        state=State(row["state"]),
        outcome=None if row["outcome"] is None else State(row["outcome"]),
        origin=Origin(row["origin"]),
        stage_times=MappingProxyType(stage_times),
        first_seen_at=first_seen,
        last_news_at=last_news,
        submitted_at=dt(row["submitted_at"]),
        request_id=row["request_id"],
        developer_key_id=row["developer_key_id"],
        user_agent=row["user_agent"],
        last_event_at=dt(row["last_event_at"]),
    )


def submission_from_row(row: sqlite3.Row) -> Submission:
    submitted_at = datetime.fromisoformat(row["submitted_at"])
    return Submission(
        id=row["id"],
        canvas_url=row["canvas_url"],
        account_ref=row["account_ref"],
        account=row["account"],
        account_id=row["account_id"],
        file_name=row["file_name"],
        size=row["size"],
        sha256=row["sha256"],
        options=MappingProxyType(json.loads(row["options"])),
        submitted_at=submitted_at,
        status=SubmissionStatus(row["status"]),
        http_status=row["http_status"],
        error=row["error"],
        sis_batch_id=row["sis_batch_id"],
        request_id=row["request_id"],
        answered_at=dt(row["answered_at"]),
        source=None if row["source"] is None else SourceObject(**json.loads(row["source"])),
        reported=row["reported"],
    )


def source_json(source: SourceObject | None) -> str | None:
    if source is None:
        return None
    return json.dumps(
        {
            "bucket": source.bucket,
            "key": source.key,
            "etag": source.etag,
            "version_id": source.version_id,
            "sequencer": source.sequencer,
        }
    )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now, not at the first write) ... COMMIT, or ROLLBACK."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back on some errors (SQLITE_FULL, IOERR...): a second
        # ROLLBACK would fail and hide the real cause.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def write(conn: sqlite3.Connection, record: ImportRecord) -> None:
    placeholders = ", ".join("?" * len(COLUMNS.split(",")))
    conn.execute(f"INSERT OR REPLACE INTO imports ({COLUMNS}) VALUES ({placeholders})", to_row(record))


def read(conn: sqlite3.Connection, account: str, sis_batch_id: int) -> ImportRecord | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM imports WHERE account = ? AND sis_batch_id = ?",
        (account, sis_batch_id),
    ).fetchone()
    return None if row is None else from_row(row)


def observe(
    conn: sqlite3.Connection, owner: str | None, obs: Observation, now: datetime, message_id: str | None
) -> Applied:
    """An observation applied to its record, joined to its submission, journaled, its effects
    written down: all in one transaction."""
    with transaction(conn):
        old = read(conn, obs.account, obs.sis_batch_id)
        result = _join_submission(conn, old, apply(old, obs, now), now)
        if old is None or result.changed:
            write(conn, result.record)
        if worth_journaling(obs, result):
            journal(conn, obs, now, message_id, result)
        outbox(conn, owner, result, now)
    return result


def insert_submission(conn: sqlite3.Connection, submission: Submission) -> int:
    """Write down what is about to be POSTed; returns its id. A drop-folder object's submission
    claims its version in the same transaction, or raises `AlreadySubmitted`."""
    source = submission.source
    with transaction(conn):
        if source is not None:
            claimed = claim_of(conn, source)
            if claimed is not None:
                raise AlreadySubmitted(f"{source.key} ({source.version}) was submitted", claimed)
        cursor = conn.execute(
            "INSERT INTO submissions (canvas_url, account_ref, account, account_id, file_name,"
            " size, sha256, options, submitted_at, status, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                submission.canvas_url,
                submission.account_ref,
                submission.account,
                submission.account_id,
                submission.file_name,
                submission.size,
                submission.sha256,
                json.dumps(dict(submission.options), sort_keys=True),
                ts(submission.submitted_at),
                submission.status.value,
                source_json(source),
            ),
        )
        submission_id = cursor.lastrowid
        assert submission_id is not None
        if source is not None:
            conn.execute(
                "INSERT INTO object_claims (bucket, key, version, submission_id) VALUES (?, ?, ?, ?)",
                (source.bucket, source.key, source.version, submission_id),
            )
    return submission_id


def release_object(conn: sqlite3.Connection, source: SourceObject) -> None:
    """Give up an object version's claim: its POST never reached Canvas, so it may come again."""
    with transaction(conn):
        claimed = claim_of(conn, source)
        if claimed is None:
            return
        conn.execute(
            "DELETE FROM object_claims WHERE bucket = ? AND key = ? AND version = ?",
            (source.bucket, source.key, source.version),
        )
        conn.execute("UPDATE submissions SET reported = 'retried' WHERE id = ?", (claimed,))


def claim_of(conn: sqlite3.Connection, source: SourceObject) -> int | None:
    """The submission holding the claim on this object version, if any."""
    row = conn.execute(
        "SELECT submission_id FROM object_claims WHERE bucket = ? AND key = ? AND version = ?",
        (source.bucket, source.key, source.version),
    ).fetchone()
    return None if row is None else int(row[0])


def answer(
    conn: sqlite3.Connection,
    owner: str | None,
    submission_id: int,
    status: SubmissionStatus,
    now: datetime,
    http_status: int | None,
    error: str | None,
    request_id: str | None,
    obs: Observation | None,
) -> Applied | None:
    """The POST's answer recorded; with the import it created (`obs`), joined to that import's
    record in the same transaction."""
    with transaction(conn):
        conn.execute(
            "UPDATE submissions SET status = ?, http_status = ?, error = ?, request_id = ?,"
            " answered_at = ?, sis_batch_id = COALESCE(?, sis_batch_id) WHERE id = ?",
            (
                status.value,
                http_status,
                error,
                request_id,
                ts(now),
                None if obs is None else obs.sis_batch_id,
                submission_id,
            ),
        )
        result = None
        if obs is not None:
            old = read(conn, obs.account, obs.sis_batch_id)
            result = join_answer(old, obs, _submitted_at(conn, submission_id), now)
            write(conn, result.record)
            journal(conn, obs, now, f"submission:{submission_id}", result)
        elif request_id is not None and status is SubmissionStatus.REJECTED:
            result = _join_by_request(conn, submission_id, request_id, now)
        if result is not None:
            outbox(conn, owner, result, now)
    return result


def _join_submission(
    conn: sqlite3.Connection, old: ImportRecord | None, result: Applied, now: datetime
) -> Applied:
    """An event of an import we submitted: mark it ours (the rule is `tracker.join_event`'s).

    The event may come before the POST's answer is recorded; then `answer` joins.
    """
    record = result.record
    if not wants_submission(record):
        return result
    rows = conn.execute(
        "SELECT * FROM submissions WHERE (account = ? AND sis_batch_id = ?) OR request_id = ?",
        (record.account, record.sis_batch_id, record.request_id),
    ).fetchall()
    submission = creator((submission_from_row(r) for r in rows), record)
    if submission is not None and submission.id is not None and submission.sis_batch_id is None:
        _link(conn, submission.id, record)  # a 400 that still left a batch behind (an orphan)
    return join_event(old, result, submission, now)


def _join_by_request(
    conn: sqlite3.Connection, submission_id: int, request_id: str, now: datetime
) -> Applied | None:
    """The POST's answer came after the event of the batch it created (a 400 that left an orphan):
    join that import, found by the POST's request id, to the submission."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM imports WHERE request_id = ? ORDER BY first_seen_at LIMIT 1", (request_id,)
    ).fetchone()
    if row is None:
        return None
    old = from_row(row)
    _link(conn, submission_id, old)
    result = join_answer(old, None, _submitted_at(conn, submission_id), now)
    if result.changed:
        write(conn, result.record)
    return result


def _link(conn: sqlite3.Connection, submission_id: int, record: ImportRecord) -> None:
    """Write down which import a submission created, once an event or the answer says."""
    conn.execute(
        "UPDATE submissions SET sis_batch_id = ?, account = ? WHERE id = ?",
        (record.sis_batch_id, record.account, submission_id),
    )


def _submitted_at(conn: sqlite3.Connection, submission_id: int) -> datetime:
    row = conn.execute("SELECT submitted_at FROM submissions WHERE id = ?", (submission_id,)).fetchone()
    return datetime.fromisoformat(row["submitted_at"])


def journal(
    conn: sqlite3.Connection, obs: Observation, now: datetime, message_id: str | None, result: Applied
) -> None:
    conn.execute(
        "INSERT INTO journal (recorded_at, account, sis_batch_id, source, state, observed_at,"
        " message_id, verdict, effects, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ts(now),
            obs.account,
            obs.sis_batch_id,
            obs.source,
            obs.state.value,
            ts(obs.at),
            message_id,
            result.verdict.value,
            describe_effects(result.effects),
            obs.note,
        ),
    )


def describe_effects(effects: Sequence[Effect]) -> str:
    return ",".join(type(e).__name__ for e in effects)


def outbox(conn: sqlite3.Connection, owner: str | None, result: Applied, now: datetime) -> None:
    """Write the effects down beside the record: claimed by `owner` (a daemon), or left for one."""
    if not result.effects:
        return
    conn.execute(
        "INSERT INTO outbox (account, sis_batch_id, recorded_at, effects, claimed_by, claimed_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            result.record.account,
            result.record.sis_batch_id,
            ts(now),
            encode_effects(result.effects),
            owner,
            None if owner is None else ts(now),
        ),
    )


def claim_outbox(conn: sqlite3.Connection, owner: str, now: datetime, limit: int) -> list[Claimed]:
    """Effects nobody counted yet (written by a command), claimed by `owner`, with their records."""
    with transaction(conn):
        rows = conn.execute(
            "SELECT id, account, sis_batch_id, effects FROM outbox"
            " WHERE claimed_by IS NULL ORDER BY id LIMIT ?",
            (limit,),
        ).fetchall()
        conn.executemany(
            "UPDATE outbox SET claimed_by = ?, claimed_at = ? WHERE id = ?",
            [(owner, ts(now), r["id"]) for r in rows],
        )
        effects: dict[tuple[str, int], list[Effect]] = {}
        for r in rows:
            effects.setdefault((r["account"], r["sis_batch_id"]), []).extend(decode_effects(r["effects"]))
        claimed = []
        for (account, batch), found in effects.items():
            record = read(conn, account, batch)
            if record is not None:
                claimed.append(Claimed(record, tuple(found)))
    return claimed


def save_stuck(
    conn: sqlite3.Connection, verdicts: Mapping[tuple[str, int], StuckReason], now: datetime
) -> None:
    """The watchdog's verdicts: new ones dated `now`, unchanged ones keep their date, the rest go."""
    with transaction(conn):
        put, gone = verdicts_changed(stuck(conn), verdicts, now)
        conn.executemany(
            "DELETE FROM stuck WHERE account = ? AND sis_batch_id = ?", [list(key) for key in gone]
        )
        conn.executemany(
            "INSERT OR REPLACE INTO stuck (account, sis_batch_id, reason, since) VALUES (?, ?, ?, ?)",
            [(a, b, v.reason.value, ts(v.since)) for (a, b), v in put.items()],
        )


def stuck(conn: sqlite3.Connection) -> dict[tuple[str, int], StuckVerdict]:
    """The verdicts as recorded (read inside `save_stuck`'s transaction, or alone)."""
    rows = conn.execute("SELECT account, sis_batch_id, reason, since FROM stuck").fetchall()
    return {(r[0], r[1]): StuckVerdict(StuckReason(r[2]), datetime.fromisoformat(r[3])) for r in rows}
