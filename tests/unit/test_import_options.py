"""`ImportOptions.params()`: exactly the Canvas parameters that were set."""

from __future__ import annotations

from consumer.submitting import ImportOptions


def test_unset_options_send_nothing() -> None:
    assert ImportOptions().params() == {}


def test_flags_are_sent_as_true() -> None:
    assert ImportOptions(batch_mode=True, skip_deletes=True).params() == {
        "batch_mode": "true",
        "skip_deletes": "true",
    }


def test_a_zero_threshold_is_sent() -> None:
    # 0 is a real value for change_threshold: it must reach Canvas, not vanish like an unset option.
    assert ImportOptions(change_threshold=0, diff_row_count_threshold=0).params() == {
        "change_threshold": "0",
        "diff_row_count_threshold": "0",
    }
