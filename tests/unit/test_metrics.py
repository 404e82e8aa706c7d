"""The metrics module: label sets exist before their first event, gauges follow the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry

from consumer.core.tracker import Observation, State, apply
from consumer.observability.metrics import Metrics

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_prime_creates_every_bounded_label_set_at_zero() -> None:
    registry = CollectorRegistry()
    Metrics(registry).prime(["acct-a"])
    assert value(registry, "sis_consumer_messages_total", outcome="dead_lettered") == 0
    assert value(registry, "sis_consumer_events_total", kind="sis_batch_updated", result="stale") == 0
    assert value(registry, "sis_consumer_reconciliations_total", result="finished_silently") == 0
    assert (
        value(
            registry,
            "canvas_sis_imports_finished_total",
            account="acct-a",
            state="aborted",
            origin="external",
        )
        == 0
    )
    assert value(registry, "canvas_sis_import_messages_total", account="acct-a", severity="error") == 0


def test_without_priming_a_label_set_does_not_exist_before_its_first_event() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    assert value(registry, "sis_consumer_messages_total", outcome="dead_lettered") is None


def test_the_rate_limit_gauge_is_nan_until_canvas_answers() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    before = value(registry, "sis_consumer_canvas_rate_limit_remaining")
    assert before is not None
    assert before != before  # NaN
    metrics.record_canvas_response("sis_imports.show", "200", 650.0, 1.5)
    assert value(registry, "sis_consumer_canvas_rate_limit_remaining") == 650.0
    assert value(registry, "sis_consumer_canvas_request_cost_total") == 1.5
    assert (
        value(registry, "sis_consumer_canvas_requests_total", endpoint="sis_imports.show", status="200") == 1
    )


def test_a_finish_no_live_event_spoke_of_is_counted_without_events_once_it_had_time_to() -> None:
    """Finished from the API 301 s after we first knew of it, no event ever: counted; 299 s: not."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, silent_after=300)
    for batch, recorded_after in ((1, 301), (2, 299)):
        created = apply(None, Observation("acct-a", batch, State.CREATED, T0, source="api"), T0).record
        finish = Observation("acct-a", batch, State.IMPORTED, T0, source="api")
        metrics.record_applied(apply(created, finish, T0 + timedelta(seconds=recorded_after)))
    assert value(registry, "canvas_sis_imports_finished_without_events_total", account="acct-a") == 1
    finished = {"account": "acct-a", "state": "imported", "origin": "external"}
    assert value(registry, "canvas_sis_imports_finished_total", **finished) == 2


def test_setup_exports_the_canvas_base_url_without_credentials_and_the_expected_intervals() -> None:
    registry = CollectorRegistry()
    Metrics(registry).describe_setup("https://u:p@canvas.example.edu/?access_token=x", {"acct-a": 93600.0})
    assert value(registry, "sis_consumer_canvas_info", canvas_url="https://canvas.example.edu") == 1
    assert value(registry, "canvas_sis_import_expected_success_interval_seconds", account="acct-a") == 93600


def test_the_process_collector_exports_the_start_time() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    started = value(registry, "process_start_time_seconds")
    assert started is not None
    assert started > 0
