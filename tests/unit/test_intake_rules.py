"""The drop folder's rules: parsing, the safety refusals, and which rule a key falls under."""

from __future__ import annotations

import pytest

from consumer.core.drop_folder_rules import DEFAULT_MAX_BYTES, IntakeRule, load_rules, match
from consumer.core.submission import ImportOptions

SAFE_BATCH = """
max_size = "20MiB"

[[rules]]
prefix = "nightly/"
account = 1

[rules.options]
batch_mode = true
batch_mode_term_id = "sis_term_id:2026FA"
change_threshold = 10

[[rules]]
prefix = "hourly/"
max_size = 4096
"""


def test_rules_read_prefix_account_options_and_sizes() -> None:
    rules, problems = load_rules(SAFE_BATCH)

    assert problems == []
    assert rules == (
        IntakeRule(
            "nightly/",
            ImportOptions(batch_mode=True, batch_mode_term_id="sis_term_id:2026FA", change_threshold=10),
            account="1",
            max_bytes=20 * 1024 * 1024,
        ),
        IntakeRule("hourly/", ImportOptions(), max_bytes=4096),
    )


def test_a_rule_without_max_size_gets_the_default() -> None:
    rules, _ = load_rules('[[rules]]\nprefix = "a/"\n')

    assert rules[0].max_bytes == DEFAULT_MAX_BYTES


def batch(options: str, extra: str = "") -> str:
    return f'[[rules]]\nprefix = "nightly/"\n{extra}\n[rules.options]\n{options}\n'


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ('batch_mode = true\nbatch_mode_term_id = "2"', "batch_mode without change_threshold"),
        (
            'diffing_data_set_identifier = "users"',
            "diffing without diff_row_count_threshold",
        ),
    ],
    ids=["batch_mode", "diffing"],
)
def test_an_unsafe_rule_is_refused_with_its_fix(options: str, needle: str) -> None:
    rules, problems = load_rules(batch(options))

    assert rules == ()
    (problem,) = problems
    assert problem.startswith("rule 'nightly/': refused: ")
    assert needle in problem
    assert "allow_unsafe = true" in problem


def test_an_unsafe_rule_explicitly_allowed_is_taken() -> None:
    rules, problems = load_rules(batch('batch_mode = true\nbatch_mode_term_id = "2"', "allow_unsafe = true"))

    assert problems == []
    assert rules[0].allow_unsafe
    assert rules[0].options.batch_mode


def test_multi_term_batch_mode_without_change_threshold_is_refused_even_when_allowed() -> None:
    """Canvas itself answers 400 to it: no flag can make that rule work."""
    _, problems = load_rules(batch("multi_term_batch_mode = true", "allow_unsafe = true"))

    assert problems == ["rule 'nightly/': multi_term_batch_mode needs change_threshold (Canvas requires it)"]


def test_batch_mode_without_a_term_is_refused() -> None:
    _, problems = load_rules(batch("batch_mode = true\nchange_threshold = 10"))

    assert problems == ["rule 'nightly/': batch_mode needs batch_mode_term_id (or multi_term_batch_mode)"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("rules = [", "not valid TOML"),
        ("", "no [[rules]]"),
        ('[[rules]]\nprefix = ""', "prefix must be a non-empty key prefix"),
        ('[[rules]]\nprefix = "a/"\n[[rules]]\nprefix = "a/"', "prefix 'a/' has more than one rule"),
        ('[[rules]]\nprefix = "a/"\nmax_sise = 3', "unknown setting 'max_sise'"),
        ('[[rules]]\nprefix = "a/"\nmax_size = "lots"', "'lots' is not a size"),
        (batch("bach_mode = true"), "options.bach_mode: not a Canvas import option"),
        (batch('extension = "zip"'), "options.extension: taken from the file's bytes"),
        (batch('skip_deletes = "yes"'), "options.skip_deletes must be true or false"),
        (batch("change_threshold = 0"), "options.change_threshold must be a whole number from 1 to 100"),
        (batch("diff_row_count_threshold = true"), "options.diff_row_count_threshold must be a whole number"),
    ],
)
def test_a_bad_rules_document_says_what_is_wrong(text: str, needle: str) -> None:
    rules, problems = load_rules(text)

    assert rules == ()
    assert any(needle in p for p in problems), problems


def test_the_longest_matching_prefix_wins_and_no_match_is_none() -> None:
    rules = (IntakeRule("nightly/"), IntakeRule("nightly/full/"), IntakeRule("hourly/"))

    assert match(rules, "nightly/full/users.zip") == rules[1]
    assert match(rules, "nightly/users.zip") == rules[0]
    assert match(rules, "other/users.zip") is None
