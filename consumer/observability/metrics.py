"""Every metric the daemon exports, against one injected registry (listed in the README, "Metrics").

The names and labels are a public contract: dashboards and alerts are built on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from consumer import __version__
from consumer.core.drop_folder import IntakeResult
from consumer.core.links import canvas_base
from consumer.core.reconcile import ReconcileResult
from consumer.core.stuck import StuckReason, StuckThresholds, finished_unseen
from consumer.core.tracker import (
    FINISHED,
    Applied,
    DurationMeasured,
    Effect,
    Finished,
    ImportRecord,
    Origin,
    StageMeasured,
    Succeeded,
)

DURATION_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
STAGE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
DELIVERY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
LEADER_ONLY = (
    "sis_consumer_canvas_rate_limit_remaining",
    "sis_consumer_canvas_token_refused_since_timestamp_seconds",
)
"""Gauges only the leader keeps current (it talks to Canvas): a former leader keeps its last value,
so dashboards and alerts read them `and on (job, instance) sis_consumer_leader == 1`."""


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, silent_after: float = 300.0) -> None:
        """`silent_after`: how long after we first knew of an import its first Live Event may take
        (SIS_CONSUMER_STUCK_SILENT); a finish without any event recorded later is counted."""
        # `_created` series double the exposition and no dashboard of ours reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
        self.registry = registry
        self._silent_after = silent_after
        r = registry
        # process_start_time_seconds and friends: restarts and crash loops show on the dashboard.
        ProcessCollector(registry=r)
        self.imports_finished = Counter(
            "canvas_sis_imports_finished",
            "SIS imports that reached a finished state.",
            ["account", "state", "origin"],
            registry=r,
        )
        self.import_duration = Histogram(
            "canvas_sis_import_duration_seconds",
            "Time from the import's creation (or our submit) to its finish.",
            ["account", "state", "origin"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.stage_duration = Histogram(
            "canvas_sis_import_stage_seconds",
            "Time spent in one stage: accepted (submit->created), queued (created->importing), "
            "importing (importing->finished).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.in_progress = Gauge(
            "canvas_sis_imports_in_progress",
            "SIS imports not yet finished, by state.",
            ["account", "state"],
            registry=r,
        )
        self.stuck = Gauge(
            "canvas_sis_imports_stuck",
            "SIS imports judged stuck, by reason.",
            ["account", "reason"],
            registry=r,
        )
        self.oldest_in_progress = Gauge(
            "canvas_sis_import_oldest_in_progress_seconds",
            "Age of the oldest unfinished SIS import.",
            ["account"],
            registry=r,
        )
        self.finished_without_events = Counter(
            "canvas_sis_imports_finished_without_events",
            "SIS imports that finished with no Live Event ever received for them, the finish "
            "recorded from the API more than SIS_CONSUMER_STUCK_SILENT after we first knew of them: "
            "the Live Events pipeline is not delivering.",
            ["account"],
            registry=r,
        )
        self.stuck_info = Gauge(
            "canvas_sis_import_stuck_info",
            "1 for each stuck import: which one (Canvas's local account id and SIS import id), and why.",
            ["account", "account_id", "sis_batch_id", "reason"],
            registry=r,
        )
        self.stuck_threshold = Gauge(
            "canvas_sis_import_stuck_threshold_seconds",
            "The threshold an import of the account is judged stuck by: learned from its own recent "
            "successful imports, or the fixed setting while it has too few.",
            ["account", "reason"],
            registry=r,
        )
        self.expected_success_since = Gauge(
            "canvas_sis_import_expected_success_since_timestamp_seconds",
            "When a daemon on this store first expected successes of the account (Unix time): its "
            "SIS_CONSUMER_EXPECT_SUCCESS_EVERY counts from here while it has no success.",
            ["account"],
            registry=r,
        )
        self.expected_success_interval = Gauge(
            "canvas_sis_import_expected_success_interval_seconds",
            "SIS_CONSUMER_EXPECT_SUCCESS_EVERY: the account should have a successful import this often.",
            ["account"],
            registry=r,
        )
        self.import_messages = Counter(
            "canvas_sis_import_messages",
            "Warnings and errors reported by finished SIS imports.",
            ["account", "severity"],
            registry=r,
        )
        self.last_success = Gauge(
            "canvas_sis_import_last_success_timestamp_seconds",
            "When the latest successful SIS import finished (Unix time).",
            ["account"],
            registry=r,
        )
        self.events = Counter(
            "sis_consumer_events",
            "Live Events received, by kind and what became of them.",
            ["kind", "result"],
            registry=r,
        )
        self.event_delivery = Histogram(
            "sis_consumer_event_delivery_seconds",
            "Time from a SIS event's event_time to its receipt here.",
            buckets=DELIVERY_BUCKETS,
            registry=r,
        )
        self.last_event = Gauge(
            "sis_consumer_last_event_timestamp_seconds",
            "When the latest SIS batch event was received (Unix time).",
            registry=r,
        )
        self.messages = Counter(
            "sis_consumer_messages",
            "SQS messages by final outcome.",
            ["outcome"],
            registry=r,
        )
        self.sqs_requests = Counter(
            "sis_consumer_sqs_requests",
            "SQS API calls by operation and result.",
            ["operation", "result"],
            registry=r,
        )
        self.last_poll = Gauge(
            "sis_consumer_last_poll_timestamp_seconds",
            "When a poller last completed a ReceiveMessage call (Unix time); stalls page.",
            registry=r,
        )
        self.canvas_requests = Counter(
            "sis_consumer_canvas_requests",
            "Canvas API calls by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.canvas_rate_limit_remaining = Gauge(
            "sis_consumer_canvas_rate_limit_remaining",
            "X-Rate-Limit-Remaining of the latest Canvas API response.",
            registry=r,
        )
        self.canvas_rate_limit_remaining.set(float("nan"))  # no Canvas call yet is not "0 left"
        self.canvas_token_refused_since = Gauge(
            "sis_consumer_canvas_token_refused_since_timestamp_seconds",
            "Since when Canvas refuses the token (401, or a 403 that is not throttling), from the "
            "latest answer to any of the leader's Canvas calls (Unix time); 0 while it accepts it. "
            "NaN on a replica that does not lead, and before the first answer.",
            registry=r,
        )
        self.canvas_token_refused_since.set(float("nan"))
        self.canvas_request_cost = Counter(
            "sis_consumer_canvas_request_cost",
            "Sum of X-Request-Cost of Canvas API responses: what we drew from the rate-limit bucket.",
            registry=r,
        )
        self.reconciliations = Counter(
            "sis_consumer_reconciliations",
            "Imports looked up through the Canvas API, by what the answer changed.",
            ["result"],
            registry=r,
        )
        self.store_requests = Counter(
            "sis_consumer_store_requests",
            "Requests to the DynamoDB store by operation and result (ok, or the error code).",
            ["operation", "result"],
            registry=r,
        )
        self.intake = Counter(
            "sis_consumer_intake",
            "Objects of the S3 drop folder (and notifications that were none), by what became of them.",
            ["result"],
            registry=r,
        )
        self.s3_requests = Counter(
            "sis_consumer_s3_requests",
            "S3 API calls of the drop folder by operation and result (ok, or the error code).",
            ["operation", "result"],
            registry=r,
        )
        self.gauges_refreshed = Gauge(
            "sis_consumer_gauges_refreshed_timestamp_seconds",
            "When the watchdog last recomputed the import gauges from the store (Unix time); "
            "0 before its first pass. Stale gauges cannot be trusted to page.",
            registry=r,
        )
        self.canvas_info = Gauge(
            "sis_consumer_canvas_info",
            "Always 1; canvas_url is SIS_CONSUMER_CANVAS_URL (scheme, host, path), for the links "
            "in alert annotations.",
            ["canvas_url"],
            registry=r,
        )
        self.leader = Gauge(
            "sis_consumer_leader",
            "1 while this replica holds the reconciler lease (talks to Canvas, counts others' effects).",
            registry=r,
        )
        self.build_info = Gauge(
            "sis_consumer_build_info",
            "Always 1; the version label says which release runs.",
            ["version"],
            registry=r,
        )
        self.build_info.labels(version=__version__).set(1)

    def prime(self, accounts: Iterable[str] = ()) -> None:
        """Create every bounded label set at zero, so `increase()` counts the first event after a
        start instead of missing it (a series' first sample has no predecessor)."""
        for outcome in ("deleted", "retried", "dead_lettered"):
            self.messages.labels(outcome)
        for kind in ("sis_batch_created", "sis_batch_updated", "other"):
            for result in ("applied", "duplicate", "stale", "ignored", "invalid", "rejected"):
                self.events.labels(kind, result)
        for reconcile_result in ReconcileResult:
            self.reconciliations.labels(reconcile_result.value)
        for account in accounts:
            self.prime_account(account)

    def prime_intake(self) -> None:
        for result in IntakeResult:
            self.intake.labels(result.value)

    def prime_account(self, account: str) -> None:
        for state in FINISHED:
            for origin in Origin:
                self.imports_finished.labels(account, state.value, origin.value)
        for severity in ("warning", "error"):
            self.import_messages.labels(account, severity)
        self.finished_without_events.labels(account)

    def describe_setup(self, canvas_url: str | None, expect_success_every: Mapping[str, float]) -> None:
        """What the configuration says, for the alert rules: the Canvas base URL of the links, and
        how often each account with a schedule should succeed."""
        if canvas_url:
            self.canvas_info.labels(canvas_base(canvas_url)).set(1)
        for account, seconds in expect_success_every.items():
            self.expected_success_interval.labels(account).set(seconds)

    def record_applied(self, applied: Applied) -> None:
        """Turn a committed transition's effects into metrics (never called for uncommitted work)."""
        self.record_effects(applied.record, applied.effects)

    def record_effects(self, record: ImportRecord, effects: Iterable[Effect]) -> None:
        """Count effects this daemon claimed: in its own commit, or from the outbox."""
        for effect in effects:
            if isinstance(effect, Finished):
                self.imports_finished.labels(record.account, effect.state.value, record.origin.value).inc()
                if finished_unseen(record, silent_after=self._silent_after):
                    self.finished_without_events.labels(record.account).inc()
            elif isinstance(effect, DurationMeasured):
                state = (record.outcome or record.state).value
                self.import_duration.labels(record.account, state, record.origin.value).observe(
                    effect.seconds
                )
            elif isinstance(effect, StageMeasured):
                self.stage_duration.labels(effect.stage.value).observe(effect.seconds)
            elif isinstance(effect, Succeeded):
                gauge = self.last_success.labels(record.account)
                gauge.set(max(_gauge_value(gauge), effect.at.timestamp()))

    def record_sqs_request(self, operation: str, result: str) -> None:
        self.sqs_requests.labels(operation, result).inc()

    def record_store_request(self, operation: str, result: str) -> None:
        self.store_requests.labels(operation, result).inc()

    def record_s3_request(self, operation: str, result: str) -> None:
        self.s3_requests.labels(operation, result).inc()

    def record_canvas_response(
        self, endpoint: str, status: str, remaining: float | None, cost: float | None
    ) -> None:
        self.canvas_requests.labels(endpoint, status).inc()
        if remaining is not None:
            self.canvas_rate_limit_remaining.set(remaining)
        if cost is not None:
            self.canvas_request_cost.inc(cost)

    def refresh_progress(
        self,
        unfinished: Iterable[ImportRecord],
        last_successes: Mapping[str, datetime],
        now: datetime,
    ) -> None:
        """Set the in-progress gauges from the store's truth (right after a restart too)."""
        counts: dict[tuple[str, str], int] = {}
        oldest: dict[str, float] = {}
        for record in unfinished:
            key = (record.account, record.state.value)
            counts[key] = counts.get(key, 0) + 1
            started = record.started_at or record.first_seen_at
            age = max(0.0, (now - started).total_seconds())
            oldest[record.account] = max(oldest.get(record.account, 0.0), age)
        # Clear first: a label set that is no longer in progress must read 0, not its last value.
        self.in_progress.clear()
        self.oldest_in_progress.clear()
        for (account, state), n in counts.items():
            self.in_progress.labels(account, state).set(n)
        for account, age in oldest.items():
            self.oldest_in_progress.labels(account).set(age)
        for account, at in last_successes.items():
            gauge = self.last_success.labels(account)
            gauge.set(max(_gauge_value(gauge), at.timestamp()))

    def refresh_stuck(
        self,
        stuck: Mapping[tuple[str, int], StuckReason],
        account_ids: Mapping[tuple[str, int], str | None] | None = None,
    ) -> None:
        """The stuck counts, and one series per stuck import (bounded by how many are stuck)."""
        account_ids = account_ids or {}
        counts: dict[tuple[str, str], int] = {}
        self.stuck_info.clear()
        for (account, batch), reason in stuck.items():
            counts[(account, reason.value)] = counts.get((account, reason.value), 0) + 1
            account_id = account_ids.get((account, batch)) or ""
            self.stuck_info.labels(account, account_id, str(batch), reason.value).set(1)
        self.stuck.clear()
        for (account, reason_label), n in counts.items():
            self.stuck.labels(account, reason_label).set(n)

    def refresh_thresholds(self, thresholds: Mapping[str, StuckThresholds]) -> None:
        self.stuck_threshold.clear()
        for account, limits in thresholds.items():
            for reason in StuckReason:
                self.stuck_threshold.labels(account, reason.value).set(getattr(limits, reason.value))


def _gauge_value(gauge: Gauge) -> float:
    # prometheus_client keeps the value privately; reading it keeps "last success" monotonic.
    return float(gauge._value.get())
