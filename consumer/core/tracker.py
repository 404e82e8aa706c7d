"""One SIS import as we track it: its states and their order, what we know about it, how one
observation changes it, how it is joined to the submission that created it, and the effects a
change has. Pure.

`apply` is the only way a record changes, for events, answers of the SIS Imports API, what an
operator says (`sis-consumer resolve`) and our own submissions alike. It is:

- idempotent: an observation already seen changes nothing and has no effects;
- monotonic: the state only moves to a higher `rank` (a late `importing` after `imported` is kept
  as a stage time but does not move the state back);
- order-independent: every field is a commutative merge (max by precedence, min of times), so any
  permutation of an import's observations ends in the same record. Effects fire on the first
  observation that makes a fact known (the finish, a stage latency), hence exactly once per import.

Canvas's events are not sequenced, so arrival order is never trusted, only the rank of a state
(Canvas's ``app/models/sis_batch.rb``); ``restoring`` outranks the finished states because a
restore may follow any finished import.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from consumer.core.submission import Submission


class State(StrEnum):
    """Defined in precedence order (see `precedence`)."""

    INITIALIZING = "initializing"
    CREATED = "created"
    IMPORTING = "importing"
    CLEANUP_BATCH = "cleanup_batch"
    IMPORTED = "imported"
    IMPORTED_WITH_MESSAGES = "imported_with_messages"
    FAILED_WITH_MESSAGES = "failed_with_messages"
    FAILED = "failed"
    ABORTED = "aborted"
    RESTORING = "restoring"
    RESTORED = "restored"
    PARTIALLY_RESTORED = "partially_restored"


ALL_STATES: frozenset[str] = frozenset(s.value for s in State)

SUCCEEDED: frozenset[State] = frozenset({State.IMPORTED, State.IMPORTED_WITH_MESSAGES})
FAILED: frozenset[State] = frozenset({State.FAILED, State.FAILED_WITH_MESSAGES, State.ABORTED})
FINISHED: frozenset[State] = SUCCEEDED | FAILED
"""The outcome of an import: what `canvas_sis_imports_finished_total{state}` counts."""

RESTORE_ENDS: frozenset[State] = frozenset({State.RESTORED, State.PARTIALLY_RESTORED})
AT_REST: frozenset[State] = FINISHED | RESTORE_ENDS
"""States in which Canvas does no more work on the batch."""

WAITING: frozenset[State] = frozenset({State.INITIALIZING, State.CREATED})
RUNNING: frozenset[State] = frozenset({State.IMPORTING, State.CLEANUP_BATCH})

_RANK: dict[State, int] = {
    State.INITIALIZING: 0,
    State.CREATED: 1,
    State.IMPORTING: 2,
    State.CLEANUP_BATCH: 3,
    **dict.fromkeys(FINISHED, 4),
    State.RESTORING: 5,
    **dict.fromkeys(RESTORE_ENDS, 6),
}
# Ties inside one rank cannot happen in Canvas (a batch finishes once), but the record must not
# depend on arrival order even then, so every state also has a unique position.
_POSITION: dict[State, int] = {state: i for i, state in enumerate(State)}


def rank(state: State) -> int:
    """How far along the lifecycle a state is; a record never moves to a lower rank."""
    return _RANK[state]


def precedence(state: State) -> tuple[int, int]:
    """A total order consistent with `rank`, used to pick one state deterministically."""
    return _RANK[state], _POSITION[state]


Source = Literal["event", "api", "operator"]


class Origin(StrEnum):
    SUBMITTED = "submitted"
    EXTERNAL = "external"


class Verdict(StrEnum):
    APPLIED = "applied"
    """The state moved forward (or the import is new)."""
    DUPLICATE = "duplicate"
    """This state was already known: a redelivery or a repeated event."""
    STALE = "stale"
    """An earlier state arrived after a later one: its time is kept, the state does not move."""


class Stage(StrEnum):
    ACCEPTED = "accepted"
    """submit -> `initializing` event."""
    QUEUED = "queued"
    """`created` -> `importing`."""
    IMPORTING = "importing"
    """`importing` -> finished."""


@dataclass(frozen=True, slots=True)
class Observation:
    """One fact about an import: a Live Event or an API answer."""

    account: str
    sis_batch_id: int
    state: State
    at: datetime
    source: Source = "event"
    account_id: str | None = None
    request_id: str | None = None
    developer_key_id: str | None = None
    user_agent: str | None = None
    note: str | None = None
    """Why, for the journal: an operator's reason. Not part of the record."""


@dataclass(frozen=True, slots=True)
class ImportRecord:
    account: str
    sis_batch_id: int
    state: State
    stage_times: Mapping[State, datetime]
    """The earliest time each state was observed at (event time, or Canvas's timestamps)."""
    first_seen_at: datetime
    last_news_at: datetime
    """When an observation last changed this record: what reconciliation waits on."""
    account_id: str | None = None
    outcome: State | None = None
    """The finished state, kept when a restore follows."""
    origin: Origin = Origin.EXTERNAL
    submitted_at: datetime | None = None
    last_event_at: datetime | None = None
    """The latest event time of a Live Event about this import; None: only the API has spoken."""
    request_id: str | None = None
    developer_key_id: str | None = None
    user_agent: str | None = None

    @property
    def key(self) -> tuple[str, int]:
        return self.account, self.sis_batch_id

    @property
    def finished_at(self) -> datetime | None:
        return None if self.outcome is None else self.stage_times[self.outcome]

    @property
    def started_at(self) -> datetime | None:
        """When the import began: our submit, else Canvas's `initializing`, else `created`."""
        candidates = [
            t
            for t in (
                self.submitted_at,
                self.stage_times.get(State.INITIALIZING),
                self.stage_times.get(State.CREATED),
            )
            if t is not None
        ]
        return min(candidates, default=None)

    @property
    def duration_seconds(self) -> float | None:
        start, end = self.started_at, self.finished_at
        return None if start is None or end is None else _seconds(start, end)


# Effects: what a committed change means for the outside world, returned as data.
@dataclass(frozen=True, slots=True)
class Finished:
    state: State


@dataclass(frozen=True, slots=True)
class DurationMeasured:
    seconds: float


@dataclass(frozen=True, slots=True)
class StageMeasured:
    stage: Stage
    seconds: float


@dataclass(frozen=True, slots=True)
class Succeeded:
    at: datetime


Effect = Finished | DurationMeasured | StageMeasured | Succeeded


@dataclass(frozen=True, slots=True)
class Applied:
    record: ImportRecord
    verdict: Verdict
    effects: tuple[Effect, ...] = ()
    earlier_time: bool = False
    """A known state seen again with an earlier time: still DUPLICATE, but the record changed."""

    @property
    def changed(self) -> bool:
        """Whether the record differs from the one passed in (and must be written)."""
        return self.verdict is not Verdict.DUPLICATE or bool(self.effects) or self.earlier_time


def apply(record: ImportRecord | None, obs: Observation, now: datetime) -> Applied:
    """Fold one observation into the record of its import (None: not seen before)."""
    if record is None:
        new = ImportRecord(
            account=obs.account,
            sis_batch_id=obs.sis_batch_id,
            state=obs.state,
            stage_times=MappingProxyType({obs.state: obs.at}),
            first_seen_at=now,
            last_news_at=now,
            account_id=obs.account_id,
            outcome=obs.state if obs.state in FINISHED else None,
            request_id=obs.request_id,
            developer_key_id=obs.developer_key_id,
            user_agent=obs.user_agent,
            last_event_at=obs.at if obs.source == "event" else None,
        )
        return Applied(new, Verdict.APPLIED, effects_between(None, new))

    if (record.account, record.sis_batch_id) != (obs.account, obs.sis_batch_id):
        raise ValueError("observation belongs to another import")

    known_at = record.stage_times.get(obs.state)
    last_event_at = record.last_event_at
    if obs.source == "event":
        last_event_at = obs.at if last_event_at is None else max(last_event_at, obs.at)
    if known_at is not None and known_at <= obs.at and last_event_at == record.last_event_at:
        return Applied(record, Verdict.DUPLICATE)

    stage_times = dict(record.stage_times)
    stage_times[obs.state] = obs.at if known_at is None else min(known_at, obs.at)
    state = max(record.state, obs.state, key=precedence)
    outcome = record.outcome
    if obs.state in FINISHED:
        outcome = obs.state if outcome is None else max(outcome, obs.state, key=precedence)
    new = replace(
        record,
        state=state,
        stage_times=MappingProxyType(stage_times),
        outcome=outcome,
        last_news_at=now,
        account_id=_merge(record.account_id, obs.account_id),
        request_id=_merge(record.request_id, obs.request_id),
        developer_key_id=_merge(record.developer_key_id, obs.developer_key_id),
        user_agent=_merge(record.user_agent, obs.user_agent),
        last_event_at=last_event_at,
    )
    if known_at is not None:
        verdict = Verdict.DUPLICATE
    elif rank(obs.state) > rank(record.state) or (
        rank(obs.state) == rank(record.state) and state is not record.state
    ):
        verdict = Verdict.APPLIED
    else:
        verdict = Verdict.STALE
    return Applied(new, verdict, effects_between(record, new), earlier_time=known_at is not None)


def worth_journaling(obs: Observation, result: Applied) -> bool:
    """Every event and every operator's word is journaled; an API answer only when it told
    something new. A quiet import is asked about every RECONCILE_AFTER, an orphaned `initializing`
    for as long as it exists: journaling each unchanged answer would grow the journal without end."""
    return obs.source != "api" or result.changed


def mark_submitted(record: ImportRecord, submitted_at: datetime, now: datetime) -> Applied:
    """Join our own submission to the record: origin becomes `submitted`, `accepted` is measured."""
    submitted = min(submitted_at, record.submitted_at or submitted_at)
    if record.origin is Origin.SUBMITTED and submitted == record.submitted_at:
        return Applied(record, Verdict.DUPLICATE)
    new = replace(record, origin=Origin.SUBMITTED, submitted_at=submitted, last_news_at=now)
    return Applied(new, Verdict.APPLIED, effects_between(record, new))


def stage_latencies(record: ImportRecord) -> dict[Stage, float]:
    """The stage latencies the record's known times allow."""
    times = record.stage_times
    pairs: dict[Stage, tuple[datetime | None, datetime | None]] = {
        Stage.ACCEPTED: (record.submitted_at, times.get(State.INITIALIZING)),
        Stage.QUEUED: (times.get(State.CREATED), times.get(State.IMPORTING)),
        Stage.IMPORTING: (times.get(State.IMPORTING), record.finished_at),
    }
    return {
        stage: _seconds(start, end)
        for stage, (start, end) in pairs.items()
        if start is not None and end is not None
    }


def effects_between(old: ImportRecord | None, new: ImportRecord) -> tuple[Effect, ...]:
    """Facts that became known going from `old` to `new`, each reported exactly once."""
    effects: list[Effect] = []
    if new.outcome is not None and (old is None or old.outcome is None):
        effects.append(Finished(new.outcome))
        if new.outcome in SUCCEEDED:
            effects.append(Succeeded(new.stage_times[new.outcome]))
    duration = new.duration_seconds
    if duration is not None and (old is None or old.duration_seconds is None):
        effects.append(DurationMeasured(duration))
    before = {} if old is None else stage_latencies(old)
    for stage, seconds in stage_latencies(new).items():
        if stage not in before:
            effects.append(StageMeasured(stage, seconds))
    return tuple(effects)


def _seconds(start: datetime, end: datetime) -> float:
    # Our clock (submit) and Canvas's (events) differ a little; a latency is never negative.
    return max(0.0, (end - start).total_seconds())


def _merge(old: str | None, new: str | None) -> str | None:
    # Canvas sends the same request context on both request-time events; min() keeps the merge
    # commutative should they ever differ, so the record stays order-independent.
    if old is None:
        return new
    if new is None:
        return old
    return min(old, new)


# Joining an import to the submission that created it. Two keys lead from an import to our
# submission, whichever side is recorded first: the import's `(account, sis_batch_id)` once the
# POST's answer named it, and the POST's `X-Request-Context-Id`, which Canvas repeats as
# `metadata.request_id` in the import's first two events. The second key is the only one a 400
# has: Canvas may have saved a batch (an orphaned `initializing`) before refusing the request, and
# the answer carries no id. Stores find the candidates and save; these decide.


def wants_submission(record: ImportRecord) -> bool:
    """Whether the store should look for this import's submission: it is not known to be ours."""
    return record.origin is not Origin.SUBMITTED


def creator(candidates: Iterable[Submission], record: ImportRecord) -> Submission | None:
    """The submission that created this import, among candidates the store found by either key:
    the earliest one Canvas answered that names this import or the request that created it."""
    for submission in sorted(candidates, key=lambda s: s.id or 0):
        if not submission.joinable:
            continue
        if (submission.account, submission.sis_batch_id) == record.key or (
            submission.request_id is not None and submission.request_id == record.request_id
        ):
            return submission
    return None


def join_event(
    old: ImportRecord | None, result: Applied, submission: Submission | None, now: datetime
) -> Applied:
    """An observation's result, marked ours when `submission` created the import. The effects
    are recomputed from `old`, so joining in the same write as the observation reports each fact
    once."""
    if submission is None or not wants_submission(result.record):
        return result
    joined = mark_submitted(result.record, submission.submitted_at, now).record
    return Applied(joined, result.verdict, effects_between(old, joined))


def join_answer(
    old: ImportRecord | None, obs: Observation | None, submitted_at: datetime, now: datetime
) -> Applied:
    """The POST's answer: the import it created (`obs`, from the answer) as ours.

    Without `obs` (a 400) only an import already known by the request id can be joined; then
    `old` is that import.
    """
    if obs is None:
        if old is None:
            raise ValueError("join_answer needs the answer's observation or a known import")
        return mark_submitted(old, submitted_at, now)
    record = apply(old, obs, now).record
    record = mark_submitted(record, submitted_at, now).record
    return Applied(record, Verdict.APPLIED, effects_between(old, record))


# The outbox (docs/architecture.md, "The outbox"): a committed change stores its effects beside
# the record, in the same write, claimed by the daemon that committed it or left for one to claim.


@dataclass(frozen=True, slots=True)
class Claimed:
    """Effects a daemon claimed, with the record they belong to (for the metric labels)."""

    record: ImportRecord
    effects: tuple[Effect, ...]


def encode_effects(effects: tuple[Effect, ...]) -> str:
    return json.dumps([_encode(e) for e in effects], separators=(",", ":"))


def decode_effects(text: str) -> tuple[Effect, ...]:
    return tuple(_decode(item) for item in json.loads(text))


def _encode(effect: Effect) -> dict[str, Any]:
    if isinstance(effect, Finished):
        return {"finished": effect.state.value}
    if isinstance(effect, DurationMeasured):
        return {"duration": effect.seconds}
    if isinstance(effect, StageMeasured):
        return {"stage": effect.stage.value, "seconds": effect.seconds}
    return {"succeeded": effect.at.isoformat()}


def _decode(item: dict[str, Any]) -> Effect:
    if "finished" in item:
        return Finished(State(item["finished"]))
    if "duration" in item:
        return DurationMeasured(float(item["duration"]))
    if "stage" in item:
        return StageMeasured(Stage(item["stage"]), float(item["seconds"]))
    return Succeeded(datetime.fromisoformat(item["succeeded"]))
