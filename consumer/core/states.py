"""The twelve SIS batch workflow states of Canvas (``app/models/sis_batch.rb``) and their order.

Canvas's events are not sequenced, so the tracker never trusts arrival order: it trusts the *rank*
of a state. A record only moves to a state of higher rank; ``restoring`` outranks the finished
states because a restore may follow any finished import.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    INITIALIZING = "initializing"
    CREATED = "created"
    IMPORTING = "importing"
    CLEANUP_BATCH = "cleanup_batch"
    IMPORTED = "imported"
    IMPORTED_WITH_MESSAGES = "imported_with_messages"
    FAILED = "failed"
    FAILED_WITH_MESSAGES = "failed_with_messages"
    ABORTED = "aborted"
    RESTORING = "restoring"
    PARTIALLY_RESTORED = "partially_restored"
    RESTORED = "restored"


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

# Ties inside one rank cannot happen in Canvas (a batch finishes once), but the record must not
# depend on arrival order even then, so every state also has a unique position.
_ORDER: tuple[State, ...] = (
    State.INITIALIZING,
    State.CREATED,
    State.IMPORTING,
    State.CLEANUP_BATCH,
    State.IMPORTED,
    State.IMPORTED_WITH_MESSAGES,
    State.FAILED_WITH_MESSAGES,
    State.FAILED,
    State.ABORTED,
    State.RESTORING,
    State.RESTORED,
    State.PARTIALLY_RESTORED,
)
_RANK: dict[State, int] = {
    State.INITIALIZING: 0,
    State.CREATED: 1,
    State.IMPORTING: 2,
    State.CLEANUP_BATCH: 3,
    **dict.fromkeys(FINISHED, 4),
    State.RESTORING: 5,
    **dict.fromkeys(RESTORE_ENDS, 6),
}
_POSITION: dict[State, int] = {state: i for i, state in enumerate(_ORDER)}


def rank(state: State) -> int:
    """How far along the lifecycle a state is; a record never moves to a lower rank."""
    return _RANK[state]


def precedence(state: State) -> tuple[int, int]:
    """A total order consistent with `rank`, used to pick one state deterministically."""
    return _RANK[state], _POSITION[state]


def is_finished(state: State) -> bool:
    return state in FINISHED


def is_at_rest(state: State) -> bool:
    return state in AT_REST
