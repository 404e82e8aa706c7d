"""What the README and the CloudFormation template say of the retry schedule is what the code does."""

from __future__ import annotations

import importlib
import itertools
import re
from pathlib import Path

from consumer.ack import retry_floor, ride_out_seconds
from tests.deploy import check_dashboard as check

README = Path(__file__).parents[2] / "README.md"
EN_DASH = "\u2013"


def _seconds(text: str) -> int:
    """`10 s`, `1 min 20 s`, `15 min` -> seconds."""
    parts = re.findall(r"(\d+) (min|s)\b", text)
    assert parts, text
    return sum(int(n) * (60 if unit == "min" else 1) for n, unit in parts)


def test_the_readme_retry_table_is_the_schedule_the_code_follows() -> None:
    header = "| receive | hidden for | the next receive, at the earliest |"
    after = README.read_text(encoding="utf-8").split(header, 1)[1].splitlines()[2:]
    rows = [line.strip() for line in itertools.takewhile(lambda line: line.strip().startswith("|"), after)]
    assert len(rows) == 10, "the README lost (part of) its retry table"
    for row in rows:
        receive, hidden, earliest = (cell.strip() for cell in row.strip("|").split("|"))
        n = int(receive)
        assert _seconds(hidden.split(EN_DASH)[0]) == retry_floor(n), row
        assert _seconds(hidden.split(EN_DASH)[1]) == round(retry_floor(n) * 1.1), row
        assert _seconds(earliest) == ride_out_seconds(n + 1), row


def test_the_template_claims_the_outage_its_max_receive_count_rides_out() -> None:
    decode = importlib.import_module("cfnlint.decode").decode
    template, matches = decode(str(check.CLOUDFORMATION))
    assert not matches, matches
    parameter = template["Parameters"]["MaxReceiveCount"]
    claimed = re.search(r"(\d+) rides out a store outage of (\d+) minutes", parameter["Description"])
    assert claimed is not None, parameter["Description"]

    assert int(claimed.group(1)) == parameter["Default"]
    assert int(claimed.group(2)) == ride_out_seconds(parameter["Default"]) // 60
