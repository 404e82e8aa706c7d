"""What an operator may tell the daemon about an import it cannot learn by itself. Pure.

Without a Canvas token an import aborted in Canvas (which sends no event) stays `importing` and
pages for ever, and an orphaned `initializing` never ends. `sis-consumer resolve` records what the
operator found as an observation of its own source, `operator`, with the reason in the journal.
It goes through the same `apply` as any event, so its finish is counted once, like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from consumer.core.tracker import ImportRecord, Observation, State

RESOLUTIONS: Final = (State.ABORTED, State.FAILED, State.IMPORTED)
MAX_WHY_CHARS: Final = 500


class Unresolvable(ValueError):
    """The import cannot be resolved: the message says why, for the operator."""


def resolution(
    record: ImportRecord | None, key: tuple[str, int], state: State, why: str, now: datetime
) -> Observation:
    """The operator's word on an unfinished import, as an observation at `now`."""
    account, sis_batch_id = key
    if state not in RESOLUTIONS:
        raise Unresolvable(
            f"an import can be resolved as {', '.join(s.value for s in RESOLUTIONS)}, not {state.value}"
        )
    why = why.strip()
    if not why or len(why) > MAX_WHY_CHARS:
        raise Unresolvable(f"--why: say why in 1 to {MAX_WHY_CHARS} characters")
    if record is None:
        raise Unresolvable(f"import {sis_batch_id} of account {account} is not in the store")
    if record.outcome is not None:
        raise Unresolvable(
            f"import {sis_batch_id} of account {account} has finished already ({record.outcome.value}):"
            " nothing to resolve"
        )
    return Observation(
        account=account,
        sis_batch_id=sis_batch_id,
        state=state,
        at=now,
        source="operator",
        account_id=record.account_id,
        note=why,
    )
