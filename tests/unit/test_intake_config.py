"""The drop folder's settings: its queue, its rules (inline or from a file), checked at start-up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.config import from_env
from consumer.errors import ConfigError

CANVAS = {
    "SIS_CONSUMER_CANVAS_URL": "https://school.instructure.com",
    "SIS_CONSUMER_CANVAS_TOKEN": "7~Zq8dXk2PLmN4vB6rT1yU3wE5sA9fG0hJcK",
}
INTAKE_QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/sis-intake"
SAFE = """
[[rules]]
prefix = "nightly/"
[rules.options]
batch_mode = true
batch_mode_term_id = "sis_term_id:2026FA"
change_threshold = 10
"""
UNSAFE = '[[rules]]\nprefix = "nightly/"\n[rules.options]\nbatch_mode = true\nbatch_mode_term_id = "2"\n'


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        from_env(env)
    return str(caught.value).splitlines()


def test_rules_from_a_file_are_read_and_shown_by_check_config(tmp_path: Path) -> None:
    rules = tmp_path / "intake.toml"
    rules.write_text(SAFE, encoding="utf-8")

    settings = from_env(
        {
            **CANVAS,
            "SIS_CONSUMER_INTAKE_QUEUE_URL": INTAKE_QUEUE,
            "SIS_CONSUMER_INTAKE_RULES_FILE": str(rules),
        }
    )

    assert settings.intake_queue_url == INTAKE_QUEUE
    (rule,) = settings.intake_rules
    assert (rule.prefix, rule.options.change_threshold) == ("nightly/", 10)
    shown = json.loads(json.dumps(settings.describe(), default=str))
    assert shown["intake_rules"][0]["options"] == {
        "batch_mode": "true",
        "batch_mode_term_id": "sis_term_id:2026FA",
        "change_threshold": "10",
    }


def test_an_unsafe_rule_refuses_the_configuration_naming_the_variable() -> None:
    (line,) = problems(
        {**CANVAS, "SIS_CONSUMER_INTAKE_QUEUE_URL": INTAKE_QUEUE, "SIS_CONSUMER_INTAKE_RULES": UNSAFE}
    )

    assert line.startswith(
        "SIS_CONSUMER_INTAKE_RULES: rule 'nightly/': refused: batch_mode without change_threshold"
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"SIS_CONSUMER_INTAKE_QUEUE_URL": INTAKE_QUEUE}, "no rules say what to submit"),
        (
            {"SIS_CONSUMER_INTAKE_RULES": SAFE},
            "SIS_CONSUMER_INTAKE_QUEUE_URL (the drop folder's queue) is not",
        ),
        (
            {"SIS_CONSUMER_INTAKE_RULES": SAFE, "SIS_CONSUMER_INTAKE_RULES_FILE": "/x.toml"},
            "both set: keep one",
        ),
        ({"SIS_CONSUMER_INTAKE_RULES_FILE": "/no/such/intake.toml"}, "cannot read '/no/such/intake.toml'"),
        ({"SIS_CONSUMER_INTAKE_QUEUE_URL": "sqs://intake"}, "is not an http(s) URL"),
    ],
    ids=["queue_without_rules", "rules_without_queue", "both_rule_variables", "missing_file", "bad_url"],
)
def test_a_half_configured_drop_folder_is_refused(env: dict[str, str], needle: str) -> None:
    lines = problems({**CANVAS, **env})

    assert any(needle in line for line in lines), lines


def test_the_drop_folder_needs_canvas_to_submit_to() -> None:
    lines = problems({"SIS_CONSUMER_INTAKE_QUEUE_URL": INTAKE_QUEUE, "SIS_CONSUMER_INTAKE_RULES": SAFE})

    assert lines == [
        "SIS_CONSUMER_INTAKE_QUEUE_URL: the drop folder submits imports, so it needs "
        "SIS_CONSUMER_CANVAS_URL and SIS_CONSUMER_CANVAS_TOKEN (or _TOKEN_FILE)"
    ]
