"""The drop folder's judgements: which bytes are an SIS file, and what is written back onto it."""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace
from datetime import timedelta

import pytest

from consumer.core.drop_folder import (
    MAX_TAGS,
    PENDING_GIVE_UP,
    Refusal,
    Refused,
    SisFile,
    inspect,
    merged_tags,
    refusal_tags,
    report_for,
    too_large,
)
from consumer.core.submission import SubmissionStatus
from consumer.core.tracker import State, apply
from tests.support.records import NOW, obs, submission

USERS = b"user_id,login_id,status\nu1,ada,active\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def zipped(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def refusal(content: bytes) -> Refusal | None:
    verdict = inspect(content)
    return verdict.reason if isinstance(verdict, Refused) else None


def test_a_csv_with_a_header_and_a_row_is_a_csv() -> None:
    assert inspect(USERS) == SisFile("csv")
    assert inspect(b"\xef\xbb\xbf" + USERS) == SisFile("csv")  # a BOM, as Excel writes


def test_a_zip_holding_a_csv_with_rows_is_a_zip_whatever_its_name() -> None:
    assert inspect(zipped(**{"users.csv": USERS, "readme.txt": b"hi"})) == SisFile("zip")


@pytest.mark.parametrize(
    "content",
    [b"", b"  \n\n", b"user_id,login_id,status\n", zipped(**{"users.csv": b"user_id,login_id\n"})],
    ids=["zero_bytes", "blank", "header_only", "zip_of_header_only"],
)
def test_a_file_without_rows_is_refused_as_empty(content: bytes) -> None:
    assert refusal(content) is Refusal.EMPTY


@pytest.mark.parametrize(
    "content",
    [
        PNG,
        "naïve,café\n1,2\n".encode("latin-1"),
        b"just a sentence\nand another\n",
        zipped(**{"notes.txt": b"hello"}),
        b"PK\x03\x04 a truncated zip",
        zipped(**{"users.csv": USERS, "photo.csv": PNG}),
    ],
    ids=["png", "latin1", "no_header", "zip_without_csv", "damaged_zip", "zip_with_a_binary_csv"],
)
def test_what_is_neither_a_zip_nor_a_csv_is_refused(content: bytes) -> None:
    assert refusal(content) is Refusal.NOT_SIS_FILE


def test_a_multibyte_character_cut_at_the_inspected_length_is_still_utf8() -> None:
    header = b"user_id,name\n"
    row = "u1,\u00e9\n".encode()
    content = header + row * 20_000  # longer than the inspected head, cut somewhere in a row

    assert inspect(content) == SisFile("csv")


def test_a_size_over_the_limit_is_too_large() -> None:
    assert too_large(10, 10) is None
    refused = too_large(11, 10)
    assert refused is not None
    assert refused.reason is Refusal.TOO_LARGE
    assert refused.reason.result.value == "refused_too_large"


def test_a_finished_import_reports_its_outcome_and_batch_id() -> None:
    done = replace(submission(), id=1, status=SubmissionStatus.ACCEPTED, sis_batch_id=101)
    record = apply(None, obs(State.IMPORTED_WITH_MESSAGES, 5), NOW).record

    report = report_for(done, record, NOW)

    assert report is not None
    assert report.status == "imported_with_messages"
    assert report.tags == {
        "sis-consumer-status": "imported_with_messages",
        "sis-consumer-sis-batch-id": "101",
    }


def test_a_running_import_reports_nothing_yet() -> None:
    done = replace(submission(), id=1, status=SubmissionStatus.ACCEPTED, sis_batch_id=101)
    running = apply(None, obs(State.IMPORTING, 5), NOW).record

    assert report_for(done, running, NOW) is None
    assert report_for(done, None, NOW) is None


def test_a_rejected_post_reports_rejected_with_canvas_status() -> None:
    rejected = replace(submission(), id=1, status=SubmissionStatus.REJECTED, http_status=400)

    report = report_for(rejected, None, NOW)

    assert report is not None
    assert report.tags == {"sis-consumer-status": "rejected", "sis-consumer-reason": "canvas_400"}


def test_an_unanswered_submission_is_reported_unknown_only_after_the_give_up_time() -> None:
    pending = replace(submission(), id=1, submitted_at=NOW - PENDING_GIVE_UP + timedelta(seconds=1))

    assert report_for(pending, None, NOW) is None
    later = report_for(pending, None, NOW + timedelta(seconds=1))
    assert later is not None
    assert later.status == "unknown"


def test_our_tags_replace_our_earlier_ones_and_keep_the_owners() -> None:
    existing = {"owner": "registrar", "sis-consumer-status": "refused", "sis-consumer-reason": "empty"}

    merged = merged_tags(existing, {"sis-consumer-status": "imported", "sis-consumer-sis-batch-id": "7"})

    assert merged == {
        "owner": "registrar",
        "sis-consumer-status": "imported",
        "sis-consumer-sis-batch-id": "7",
    }


def test_when_the_owners_tags_leave_little_room_the_status_goes_first() -> None:
    existing = {f"t{i}": "x" for i in range(MAX_TAGS - 1)}

    merged = merged_tags(existing, refusal_tags(Refused(Refusal.EMPTY, "")))

    assert len(merged) == MAX_TAGS
    assert merged["sis-consumer-status"] == "refused"
    assert "sis-consumer-reason" not in merged
