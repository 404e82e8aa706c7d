"""`consumer.config.from_env`: one validated settings object from an environment mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.config import DEFAULT_STORE, Secret, Settings, from_env
from consumer.config_warnings import known_variables, warnings
from consumer.errors import ConfigError

TOKEN = "7~Zq8dXk2PLmN4vB6rT1yU3wE5sA9fG0hJcK"
QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/canvas-live-events-prod"
CANVAS = "https://school.instructure.com"


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        from_env(env)
    return str(caught.value).splitlines()


def test_empty_environment_gives_the_defaults() -> None:
    settings = from_env({})

    assert settings == Settings()
    assert settings.store_url == DEFAULT_STORE
    assert settings.metrics_addr == "127.0.0.1:9464"
    assert (settings.pollers, settings.wait_time_seconds, settings.visibility_timeout) == (4, 20, 60.0)
    assert (settings.queue_url, settings.dlq_url, settings.canvas_token) == (None, None, None)
    assert settings.accounts == frozenset()
    assert (settings.log_format, settings.log_level) == ("json", "info")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("2h", 7200.0), ("500ms", 0.5), ("1.5h", 5400.0)],
)
def test_durations_accept_seconds_or_a_unit(text: str, seconds: float) -> None:
    settings = from_env({"SIS_CONSUMER_RECONCILE_SPACING": text})

    assert settings.reconcile_spacing == seconds


@pytest.mark.parametrize("text", ["ten minutes", "15 min", "-5", "5x", "h"])
def test_a_bad_duration_is_a_readable_error_naming_the_variable(text: str) -> None:
    (line,) = problems({"SIS_CONSUMER_STUCK_RUNNING": text})

    assert line.startswith("SIS_CONSUMER_STUCK_RUNNING: ")
    assert repr(text) in line
    assert "Traceback" not in line


def test_every_problem_is_reported_at_once_one_per_line() -> None:
    lines = problems({"SIS_CONSUMER_POLLERS": "lots", "SIS_CONSUMER_GAUGE_INTERVAL": "often"})

    assert len(lines) == 2
    assert any(line.startswith("SIS_CONSUMER_POLLERS:") for line in lines)
    assert any(line.startswith("SIS_CONSUMER_GAUGE_INTERVAL:") for line in lines)


def test_missing_queue_url_is_fine_until_the_queue_is_required() -> None:
    settings = from_env({})

    with pytest.raises(ConfigError) as caught:
        settings.require_queue()

    (line,) = str(caught.value).splitlines()
    assert "SIS_CONSUMER_QUEUE_URL" in line


def test_require_queue_returns_the_queue_url() -> None:
    assert from_env({"SIS_CONSUMER_QUEUE_URL": QUEUE}).require_queue() == QUEUE


def test_queue_url_must_be_an_http_url() -> None:
    (line,) = problems({"SIS_CONSUMER_QUEUE_URL": "canvas-live-events-prod", "AWS_REGION": "us-east-1"})

    assert line.startswith("SIS_CONSUMER_QUEUE_URL:")


def test_region_from_aws_region() -> None:
    assert from_env({"AWS_REGION": "ca-central-1"}).region == "ca-central-1"


def test_region_from_aws_default_region() -> None:
    assert from_env({"AWS_DEFAULT_REGION": "ap-southeast-2"}).region == "ap-southeast-2"


def test_aws_region_wins_over_aws_default_region() -> None:
    settings = from_env({"AWS_REGION": "ca-central-1", "AWS_DEFAULT_REGION": "ap-southeast-2"})

    assert settings.region == "ca-central-1"


def test_region_parsed_from_an_sqs_queue_url() -> None:
    assert from_env({"SIS_CONSUMER_QUEUE_URL": QUEUE}).region == "eu-west-1"


def test_explicit_region_wins_over_the_queue_url() -> None:
    assert from_env({"SIS_CONSUMER_QUEUE_URL": QUEUE, "AWS_REGION": "us-west-2"}).region == "us-west-2"


def test_queue_url_without_a_region_and_no_aws_region_is_an_error() -> None:
    (line,) = problems({"SIS_CONSUMER_QUEUE_URL": "http://127.0.0.1:4566/000000000000/canvas-live-events"})

    assert "AWS_REGION" in line


def test_token_from_the_environment() -> None:
    settings = from_env({"SIS_CONSUMER_CANVAS_TOKEN": TOKEN, "SIS_CONSUMER_CANVAS_URL": CANVAS})

    assert settings.canvas_token == Secret(TOKEN)
    assert settings.canvas_token is not None
    assert settings.canvas_token.reveal() == TOKEN


def test_token_from_a_file_without_its_trailing_newline(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    settings = from_env(
        {"SIS_CONSUMER_CANVAS_TOKEN_FILE": str(token_file), "SIS_CONSUMER_CANVAS_URL": CANVAS}
    )

    assert settings.canvas_token is not None
    assert settings.canvas_token.reveal() == TOKEN


def test_token_and_token_file_both_set_is_an_error(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    (line,) = problems(
        {
            "SIS_CONSUMER_CANVAS_TOKEN": TOKEN,
            "SIS_CONSUMER_CANVAS_TOKEN_FILE": str(token_file),
            "SIS_CONSUMER_CANVAS_URL": CANVAS,
        }
    )

    assert "SIS_CONSUMER_CANVAS_TOKEN" in line
    assert "SIS_CONSUMER_CANVAS_TOKEN_FILE" in line
    assert TOKEN not in line


def test_unreadable_token_file_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    (line,) = problems(
        {"SIS_CONSUMER_CANVAS_TOKEN_FILE": str(tmp_path / "missing"), "SIS_CONSUMER_CANVAS_URL": CANVAS}
    )

    assert line.startswith("SIS_CONSUMER_CANVAS_TOKEN_FILE:")


def test_token_without_canvas_url_is_an_error_that_does_not_show_the_token() -> None:
    (line,) = problems({"SIS_CONSUMER_CANVAS_TOKEN": TOKEN})

    assert "SIS_CONSUMER_CANVAS_URL" in line
    assert TOKEN not in line


def test_token_never_appears_in_repr_str_or_describe() -> None:
    settings = from_env({"SIS_CONSUMER_CANVAS_TOKEN": TOKEN, "SIS_CONSUMER_CANVAS_URL": CANVAS})

    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert TOKEN not in json.dumps(settings.describe(), default=str)
    assert TOKEN not in repr(settings.canvas_token)
    assert settings.describe()["canvas_token"] == "******** (set)"


def test_token_never_appears_in_a_config_error_about_other_variables() -> None:
    lines = problems(
        {"SIS_CONSUMER_CANVAS_TOKEN": TOKEN, "SIS_CONSUMER_CANVAS_URL": CANVAS, "SIS_CONSUMER_POLLERS": "0"}
    )

    assert lines
    assert all(TOKEN not in line for line in lines)


def test_describe_says_when_no_token_is_set() -> None:
    assert "not set" in from_env({}).describe()["canvas_token"]


@pytest.mark.parametrize(
    ("addr", "host", "port"),
    [("0.0.0.0:9100", "0.0.0.0", 9100), ("localhost:8080", "localhost", 8080), ("[::1]:9464", "::1", 9464)],
)
def test_metrics_addr_is_host_and_port(addr: str, host: str, port: int) -> None:
    settings = from_env({"SIS_CONSUMER_METRICS_ADDR": addr})

    assert (settings.metrics_host, settings.metrics_port) == (host, port)


@pytest.mark.parametrize("addr", ["9100", ":9100", "localhost:", "localhost:http", "localhost:70000"])
def test_a_bad_metrics_addr_is_an_error_naming_the_variable(addr: str) -> None:
    (line,) = problems({"SIS_CONSUMER_METRICS_ADDR": addr})

    assert line.startswith("SIS_CONSUMER_METRICS_ADDR:")


UUID_A = "VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs"
UUID_B = "Q2xnZXh9aHrHrxJqC2f8w5pTAm0LbVwAsKGu4hZd"


def test_accounts_allowlist_is_a_comma_separated_set() -> None:
    settings = from_env({"SIS_CONSUMER_ACCOUNTS": f" {UUID_A}, {UUID_B},,{UUID_A} "})

    assert settings.accounts == frozenset({UUID_A, UUID_B})


@pytest.mark.parametrize("account", ["1", "21070000000000001", "sis_account_id:MAIN", UUID_A[:-1]])
def test_an_account_that_is_not_a_root_account_uuid_is_an_error(account: str) -> None:
    """Live Events carry the 40-character UUID: with a local id listed, every event is rejected."""
    (line,) = problems({"SIS_CONSUMER_ACCOUNTS": f"{UUID_A},{account}"})

    assert line.startswith("SIS_CONSUMER_ACCOUNTS:")
    assert repr(account) in line
    assert "UUID" in line


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/canvas-live-events.fifo"),
        ("DLQ_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/canvas-live-events-dlq.fifo"),
        ("INTAKE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/sis-intake.fifo"),
    ],
)
def test_a_fifo_queue_is_an_error(name: str, url: str) -> None:
    env = {f"SIS_CONSUMER_{name}": url, "AWS_REGION": "us-east-1"}
    if name == "INTAKE_QUEUE_URL":
        env |= {"SIS_CONSUMER_INTAKE_RULES": 'rules = [{prefix = "n/"}]', "SIS_CONSUMER_CANVAS_URL": CANVAS}
        env |= {"SIS_CONSUMER_CANVAS_TOKEN": TOKEN}

    (line,) = problems(env)

    assert line.startswith(f"SIS_CONSUMER_{name}:")
    assert "FIFO" in line
    assert "standard" in line


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("arn:aws:sqs:us-east-1:123456789012:canvas-live-events-prod", "the queue's ARN"),
        ("https://sqs.us-east-1.amazonaws.com/", "is not a queue URL"),
    ],
)
def test_a_queue_arn_or_a_url_without_a_queue_is_an_error(url: str, says: str) -> None:
    (line,) = problems({"SIS_CONSUMER_QUEUE_URL": url, "AWS_REGION": "us-east-1"})

    assert line.startswith("SIS_CONSUMER_QUEUE_URL:")
    assert says in line


def test_a_misspelled_variable_is_warned_about_with_the_closest_name() -> None:
    env = {"SIS_CONSUMER_CANVAS_TOKEN_FILES": "/run/secrets/token", "SIS_CONSUMER_COLOUR": "blue"}

    found = warnings(env, from_env(env))

    assert found == [
        "SIS_CONSUMER_CANVAS_TOKEN_FILES is not a setting of sis-consumer and is ignored: "
        "did you mean SIS_CONSUMER_CANVAS_TOKEN_FILE?",
        "SIS_CONSUMER_COLOUR is not a setting of sis-consumer and is ignored",
    ]


def test_every_variable_the_settings_read_is_known() -> None:
    assert {"SIS_CONSUMER_QUEUE_URL", "SIS_CONSUMER_STUCK_SILENT", "SIS_CONSUMER_INTAKE_RULES_FILE"} <= (
        known_variables()
    )
    assert warnings({"SIS_CONSUMER_QUEUE_URL": QUEUE}, from_env({"SIS_CONSUMER_QUEUE_URL": QUEUE})) == []


def test_a_queue_canvas_would_not_deliver_to_is_warned_about() -> None:
    queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/sis-events"

    [warning] = warnings({}, from_env({"SIS_CONSUMER_QUEUE_URL": queue}))

    assert "canvas-live-events" in warning


def test_stall_after_must_exceed_the_long_poll_by_more_than_ten_seconds() -> None:
    (line,) = problems({"SIS_CONSUMER_STALL_AFTER": "30s"})

    assert "SIS_CONSUMER_STALL_AFTER" in line


def test_stall_after_is_checked_against_the_configured_long_poll() -> None:
    settings = from_env({"SIS_CONSUMER_STALL_AFTER": "30s", "SIS_CONSUMER_WAIT_TIME_SECONDS": "5"})

    assert settings.stall_after == 30.0


@pytest.mark.parametrize("value", ["0", "13h"])
def test_visibility_timeout_must_be_within_the_range_of_sqs(value: str) -> None:
    (line,) = problems({"SIS_CONSUMER_VISIBILITY_TIMEOUT": value})

    assert "SIS_CONSUMER_VISIBILITY_TIMEOUT" in line


def test_unknown_store_scheme_is_an_error() -> None:
    (line,) = problems({"SIS_CONSUMER_STORE": "postgres://db/sis"})

    assert line.startswith("SIS_CONSUMER_STORE:")


def test_sqlite_store_url_gives_its_path() -> None:
    settings = from_env({"SIS_CONSUMER_STORE": "sqlite:////var/lib/sis-consumer/state.db"})

    assert settings.sqlite_path == Path("/var/lib/sis-consumer/state.db")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SIS_CONSUMER_POLLERS", "²"),
        ("SIS_CONSUMER_WAIT_TIME_SECONDS", "¹⁰"),
        ("SIS_CONSUMER_METRICS_ADDR", "h:²"),
    ],
)
def test_a_number_that_only_looks_like_digits_is_a_config_error(name: str, value: str) -> None:
    (line,) = problems({name: value})

    assert line.startswith(f"{name}:")


def test_a_dynamodb_store_url_gives_its_table() -> None:
    settings = from_env({"SIS_CONSUMER_STORE": "dynamodb://sis-imports", "AWS_REGION": "us-east-1"})

    assert (settings.dynamodb_table, settings.sqlite_path) == ("sis-imports", None)


@pytest.mark.parametrize("table", ["", "ab", "sis imports", "sis/imports"])
def test_a_dynamodb_store_needs_a_valid_table_name(table: str) -> None:
    (problem,) = problems({"SIS_CONSUMER_STORE": f"dynamodb://{table}", "AWS_REGION": "us-east-1"})

    assert problem.startswith("SIS_CONSUMER_STORE:")


def test_a_dynamodb_store_needs_a_region() -> None:
    (problem,) = problems({"SIS_CONSUMER_STORE": "dynamodb://sis-imports"})

    assert "AWS_REGION" in problem


def test_the_lease_and_journal_retention_have_floors() -> None:
    found = problems({"SIS_CONSUMER_LEASE": "1s", "SIS_CONSUMER_JOURNAL_RETENTION": "2h"})

    assert [p.split()[0] for p in found] == ["SIS_CONSUMER_LEASE", "SIS_CONSUMER_JOURNAL_RETENTION"]


def test_a_sub_second_visibility_timeout_is_refused() -> None:
    # SQS takes whole seconds; 500ms would round to 0, which means "visible again at once".
    (problem,) = problems({"SIS_CONSUMER_VISIBILITY_TIMEOUT": "500ms"})
    assert "SIS_CONSUMER_VISIBILITY_TIMEOUT" in problem


LOOP_FLOORS = {
    "SIS_CONSUMER_GAUGE_INTERVAL": "100ms",
    "SIS_CONSUMER_RECONCILE_AFTER": "1s",
    "SIS_CONSUMER_RECONCILE_SPACING": "10ms",
    "SIS_CONSUMER_CANVAS_TIMEOUT": "1s",
    "SIS_CONSUMER_STUCK_NEVER_STARTED": "1s",
    "SIS_CONSUMER_STUCK_RUNNING": "1s",
    "SIS_CONSUMER_STUCK_ORPHANED": "1s",
    "SIS_CONSUMER_STUCK_SILENT": "1s",
}


@pytest.mark.parametrize("name", sorted(LOOP_FLOORS))
@pytest.mark.parametrize("value", ["0", "0s", "1ms"])
def test_a_duration_that_would_make_a_busy_loop_is_refused_naming_its_floor(name: str, value: str) -> None:
    (line,) = problems({name: value})

    assert line == f"{name} must be at least {LOOP_FLOORS[name]}"


@pytest.mark.parametrize("name", sorted(LOOP_FLOORS))
def test_a_duration_at_its_floor_is_accepted(name: str) -> None:
    from_env({name: LOOP_FLOORS[name]})


@pytest.mark.parametrize(
    ("name", "url", "shown"),
    [
        ("CANVAS_URL", "https://sis:hunter2pass@canvas.example.edu", "https://[REDACTED]@canvas.example.edu"),
        (
            "QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/canvas-live-events?X-Amz-Signature=abcdef123",
            "https://sqs.eu-west-1.amazonaws.com/1/canvas-live-events?[REDACTED]",
        ),
        (
            "DLQ_URL",
            "http://user@127.0.0.1:9324/q?token=x#f",
            "http://[REDACTED]@127.0.0.1:9324/q?[REDACTED]",
        ),
    ],
    ids=["userinfo", "query", "both"],
)
def test_describe_masks_the_credentials_and_query_of_urls(name: str, url: str, shown: str) -> None:
    settings = from_env({f"SIS_CONSUMER_{name}": url, "AWS_REGION": "us-east-1"})

    described = json.dumps(settings.describe())

    assert shown in described
    for secret in ("hunter2pass", "abcdef123", "token=x", "user@"):
        assert secret not in described


def test_the_canvas_timeout_is_a_duration() -> None:
    assert from_env({"SIS_CONSUMER_CANVAS_TIMEOUT": "5s"}).canvas_timeout == 5.0


# ------------------------------------------------------------------ success expectations
A, B = UUID_A, UUID_B


def test_expected_successes_are_per_account() -> None:
    settings = from_env({"SIS_CONSUMER_EXPECT_SUCCESS_EVERY": f"{A}=26h, {B}=74h"})

    assert settings.expect_success_every == {A: 26 * 3600.0, B: 74 * 3600.0}


def test_without_a_schedule_no_account_is_expected_to_succeed() -> None:
    assert from_env({"SIS_CONSUMER_ACCOUNTS": f"{A},{B}"}).expect_success_every == {}


def test_a_bare_interval_applies_to_every_allowed_account_and_a_named_one_wins() -> None:
    settings = from_env(
        {"SIS_CONSUMER_ACCOUNTS": f"{A},{B}", "SIS_CONSUMER_EXPECT_SUCCESS_EVERY": f"{B}=74h,26h"}
    )

    assert settings.expect_success_every == {A: 26 * 3600.0, B: 74 * 3600.0}


def test_a_bare_interval_without_an_allowlist_is_an_error() -> None:
    (line,) = problems({"SIS_CONSUMER_EXPECT_SUCCESS_EVERY": "26h"})

    assert line.startswith("SIS_CONSUMER_EXPECT_SUCCESS_EVERY: a bare interval applies to every account")


def test_an_expected_account_outside_the_allowlist_is_an_error() -> None:
    (line,) = problems({"SIS_CONSUMER_ACCOUNTS": A, "SIS_CONSUMER_EXPECT_SUCCESS_EVERY": f"{B}=26h"})

    assert line == f"SIS_CONSUMER_EXPECT_SUCCESS_EVERY: account '{B}' is not in SIS_CONSUMER_ACCOUNTS"


@pytest.mark.parametrize("interval", ["often", "0"])
def test_an_expected_interval_must_be_a_positive_duration(interval: str) -> None:
    (line,) = problems({"SIS_CONSUMER_EXPECT_SUCCESS_EVERY": f"{A}={interval}"})

    assert line.startswith(f"SIS_CONSUMER_EXPECT_SUCCESS_EVERY: '{A}={interval}': ")


# ------------------------------------------------------------------ learned thresholds
def test_learning_settings_and_their_defaults() -> None:
    default = from_env({}).learning
    tuned = from_env(
        {
            "SIS_CONSUMER_STUCK_LEARN_AFTER": "0",
            "SIS_CONSUMER_STUCK_LEARN_FLOOR": "1s",
            "SIS_CONSUMER_STUCK_LEARN_CEILING": "1d",
        }
    ).learning

    assert (default.after, default.floor, default.ceiling) == (5, 900.0, 43200.0)
    assert (tuned.after, tuned.floor, tuned.ceiling) == (0, 1.0, 86400.0)


def test_learning_needs_a_floor_below_its_ceiling_and_at_most_a_history_of_runs() -> None:
    lines = problems(
        {
            "SIS_CONSUMER_STUCK_LEARN_FLOOR": "2h",
            "SIS_CONSUMER_STUCK_LEARN_CEILING": "1h",
            "SIS_CONSUMER_STUCK_LEARN_AFTER": "31",
        }
    )

    assert lines == [
        "SIS_CONSUMER_STUCK_LEARN_AFTER: '31' is not a whole number from 0 to 30",
        "SIS_CONSUMER_STUCK_LEARN_FLOOR must not exceed SIS_CONSUMER_STUCK_LEARN_CEILING",
    ]
