"""What the simulated Canvas does, per run (`Knobs`) and per import (`Plan`). Pure: no I/O.

Durations are sandbox seconds, multiplied by `Knobs.time_scale`: real Canvas takes minutes to hours,
tests want tenths of a second. Random choices come from a `random.Random` seeded by `Knobs.seed`, so
a run with the same knobs and the same requests makes the same choices.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, cast

Outcome = Literal["imported", "imported_with_messages", "failed", "failed_with_messages", "aborted"]
RunningState = Literal["importing", "cleanup_batch"]
ThrottleStatus = Literal[403, 429]

OUTCOMES: frozenset[str] = frozenset(
    {"imported", "imported_with_messages", "failed", "failed_with_messages", "aborted"}
)
EVENT_STATES: frozenset[str] = frozenset(
    {
        "initializing",
        "created",
        "importing",
        "imported",
        "imported_with_messages",
        "failed",
        "failed_with_messages",
        "restoring",
        "restored",
        "partially_restored",
    }
)
"""The states that publish an event: `cleanup_batch` and `aborted` are silent (docs/canvas.md)."""
SCRIPTED_FATES: frozenset[str] = OUTCOMES | {"stuck"}
"""What `Knobs.fates` may list: an outcome, or `stuck` (the job dies in `importing`)."""


@dataclass(frozen=True, slots=True)
class Knobs:
    """Per-run behaviour. Defaults: every import succeeds quickly, no event is lost, nothing throttles."""

    seed: int = 0
    time_scale: float = 1.0
    # Processing times (sandbox seconds, before time_scale).
    initializing_seconds: float = 0.0
    """Between `initializing` and `created`, inside the POST (Canvas stores the upload there)."""
    queue_seconds: float = 0.02
    """Job pickup latency: from `created` (or the previous import's end) to `importing`."""
    importing_seconds: float = 0.15
    cleanup_seconds: float = 0.05
    errors_attachment_seconds: float = 0.1
    """From the final state to `errors_attachment` appearing (a later job writes it)."""
    after_abort_seconds: float = 0.3
    """Canvas waits about 10 minutes after an abort before it starts the next queued import."""
    progress_steps: int = 4
    # Outcome rates of imports without a plan: one draw, tried in this order; the rest succeed.
    failed_rate: float = 0.0
    failed_with_messages_rate: float = 0.0
    warning_rate: float = 0.0
    """`imported_with_messages`."""
    abort_rate: float = 0.0
    """Aborted while importing (someone's abort, a change_threshold): silent."""
    stuck_rate: float = 0.0
    """Left in `importing` forever (the job died); later imports of the account wait behind it."""
    messages_per_import: int = 3
    fates: tuple[str, ...] = ()
    """When set, imports nobody planned take these fates in turn (of `SCRIPTED_FATES`), instead of
    a draw from the rates: a script's author can see each outcome when they want it."""
    restore_seconds: float = 0.1
    """How long `restore_states` stays `restoring` (a job restores every changed row)."""
    # Live Events delivery.
    loss_rate: float = 0.0
    duplicate_rate: float = 0.0
    delivery_jitter_seconds: float = 0.0
    """Each event waits uniform(0, jitter) before it is sent, so later events can overtake it."""
    orphan_on_400: bool = True
    """A create rejected after the batch was saved leaves an orphaned `initializing` (and its event)."""
    jobs_running: bool = True
    """False: nothing leaves `created` (self-hosted Canvas without job workers) until `start_jobs`."""
    # Throttling: a leaky bucket per token. Real Canvas: capacity ~600-700, leak 10/s.
    throttle_capacity: float = 700.0
    throttle_leak_per_second: float = 10.0
    request_cost: float = 1.0
    throttle_status: ThrottleStatus = 403
    # API.
    first_sis_batch_id: int = 31048321
    per_page_default: int = 10
    per_page_max: int = 100

    def __post_init__(self) -> None:
        problems: list[str] = []
        rates = {
            "failed_rate": self.failed_rate,
            "failed_with_messages_rate": self.failed_with_messages_rate,
            "warning_rate": self.warning_rate,
            "abort_rate": self.abort_rate,
            "stuck_rate": self.stuck_rate,
            "loss_rate": self.loss_rate,
            "duplicate_rate": self.duplicate_rate,
        }
        problems += [f"{name} must be within [0, 1]" for name, v in rates.items() if not 0 <= v <= 1]
        outcome_total = sum(v for k, v in rates.items() if k not in {"loss_rate", "duplicate_rate"})
        if outcome_total > 1:
            problems.append("outcome rates add up to more than 1")
        seconds = {
            "time_scale": self.time_scale,
            "initializing_seconds": self.initializing_seconds,
            "queue_seconds": self.queue_seconds,
            "importing_seconds": self.importing_seconds,
            "cleanup_seconds": self.cleanup_seconds,
            "errors_attachment_seconds": self.errors_attachment_seconds,
            "after_abort_seconds": self.after_abort_seconds,
            "delivery_jitter_seconds": self.delivery_jitter_seconds,
            "restore_seconds": self.restore_seconds,
        }
        problems += [f"{name} must be >= 0" for name, v in seconds.items() if v < 0]
        unknown = sorted(set(self.fates) - SCRIPTED_FATES)
        if unknown:
            problems.append(f"fates: unknown {unknown}; choose from {sorted(SCRIPTED_FATES)}")
        if self.progress_steps < 1:
            problems.append("progress_steps must be >= 1")
        if self.throttle_capacity <= 0 or self.throttle_leak_per_second < 0 or self.request_cost < 0:
            problems.append("throttle_capacity must be > 0, leak and cost >= 0")
        if not 1 <= self.per_page_default <= self.per_page_max:
            problems.append("per_page_default must be within [1, per_page_max]")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def demo(cls, seed: int = 7) -> Knobs:
        """A night of imports in about a minute, with a bit of every kind of trouble the daemon must
        survive: what `sis-consumer sandbox` runs, and `sis-consumer demo` without the random part."""
        return cls(
            seed=seed,
            queue_seconds=0.5,
            importing_seconds=3.0,
            cleanup_seconds=1.0,
            errors_attachment_seconds=2.0,
            after_abort_seconds=4.0,
            restore_seconds=1.0,
            failed_rate=0.05,
            failed_with_messages_rate=0.05,
            warning_rate=0.2,
            abort_rate=0.03,
            stuck_rate=0.02,
            loss_rate=0.02,
            duplicate_rate=0.05,
            delivery_jitter_seconds=0.3,
            messages_per_import=4,
        )

    def scaled(self, seconds: float) -> float:
        return seconds * self.time_scale


@dataclass(frozen=True, slots=True)
class Plan:
    """The fate of one import. `None` fields fall back to the knobs."""

    outcome: Outcome = "imported"
    stuck: bool = False
    stuck_in: RunningState = "importing"
    abort_in: RunningState = "importing"
    """Where an `aborted` outcome strikes (`cleanup_batch` is how change_threshold aborts)."""
    cleanup: bool | None = None
    """Run the silent `cleanup_batch` phase; None: when the import is in batch mode."""
    queue_seconds: float | None = None
    importing_seconds: float | None = None
    cleanup_seconds: float | None = None
    errors_attachment_seconds: float | None = None
    messages: int | None = None
    """Warnings (imported_with_messages) or errors (failed_with_messages); Canvas lists 24 at most."""
    lose: frozenset[str] = frozenset()
    """Event states to drop, whatever the loss rate says."""
    duplicate: frozenset[str] = frozenset()
    """Event states to send twice."""
    delay: Mapping[str, float] = field(default_factory=dict)
    """Extra delivery delay per event state, to make a later event overtake it."""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")
        for name, states in (("lose", self.lose), ("duplicate", self.duplicate), ("delay", self.delay)):
            unknown = set(states) - EVENT_STATES
            if unknown:
                raise ValueError(f"{name}: no event is published for {sorted(unknown)}")

    def cleanup_phase(self, batch_mode: bool) -> bool:
        """Whether the import passes through `cleanup_batch` (only a successful import cleans up)."""
        if self.stuck and self.stuck_in == "cleanup_batch":
            return True
        if self.outcome == "aborted" and self.abort_in == "cleanup_batch":
            return True
        if self.outcome not in {"imported", "imported_with_messages", "aborted"}:
            return False
        return batch_mode if self.cleanup is None else self.cleanup


def scripted_plan(fate: str) -> Plan:
    """The plan of one of `SCRIPTED_FATES`."""
    return Plan(stuck=True) if fate == "stuck" else Plan(outcome=cast(Outcome, fate))


def draw_plan(knobs: Knobs, rng: random.Random) -> Plan:
    """The fate of an import nobody planned, from the knobs' outcome rates."""
    draw = rng.random()
    for rate, plan in (
        (knobs.failed_rate, Plan(outcome="failed")),
        (knobs.failed_with_messages_rate, Plan(outcome="failed_with_messages")),
        (knobs.warning_rate, Plan(outcome="imported_with_messages")),
        (knobs.abort_rate, Plan(outcome="aborted")),
        (knobs.stuck_rate, Plan(stuck=True)),
    ):
        if draw < rate:
            return plan
        draw -= rate
    return Plan()
