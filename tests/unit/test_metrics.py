"""The metrics module: label sets exist before their first event, gauges follow the store."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from consumer.observability.metrics import Metrics


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
