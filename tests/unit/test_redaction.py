"""`consumer.observability.logs`: no token ever reaches a log line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from consumer.observability import logs
from consumer.redaction import REDACTED, redact, redact_text, redact_value

TOKEN = "7~Zq8dXk2PLmN4vB6rT1yU3wE5sA9fG0hJcKx7Lw"
BASE = "https://school.instructure.com/api/v1/accounts/1/sis_imports"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"{BASE}?access_token={TOKEN}", f"{BASE}?access_token={REDACTED}"),
        (
            f"{BASE}?import_type=instructure_csv&access_token={TOKEN}&extension=zip",
            f"{BASE}?import_type=instructure_csv&access_token={REDACTED}&extension=zip",
        ),
        (
            f"{BASE}?batch_mode=1&access_token={TOKEN}",
            f"{BASE}?batch_mode=1&access_token={REDACTED}",
        ),
        (
            f"{BASE}?next=%2Fcourses%3Fa%3D1%26b%3D2&access_token={TOKEN}&q=a%20b",
            f"{BASE}?next=%2Fcourses%3Fa%3D1%26b%3D2&access_token={REDACTED}&q=a%20b",
        ),
        (
            f"{BASE}?access_token=7~abc%2Bdef%2Fghi%3D&per_page=100",
            f"{BASE}?access_token={REDACTED}&per_page=100",
        ),
        (f"{BASE}?ACCESS_TOKEN={TOKEN}#top", f"{BASE}?ACCESS_TOKEN={REDACTED}#top"),
    ],
    ids=["first", "middle", "last", "encoded-neighbours", "encoded-token", "upper-case"],
)
def test_access_token_in_a_query_string_is_redacted_and_the_rest_kept(url: str, expected: str) -> None:
    assert redact_text(url) == expected


def test_text_without_secrets_is_unchanged() -> None:
    text = f"{BASE}?import_type=instructure_csv&extension=zip sent by sis-uploader/2.1"

    assert redact_text(text) == text


def test_bearer_token_in_an_authorization_header_is_redacted() -> None:
    assert redact_text(f"Authorization: Bearer {TOKEN}") == f"Authorization: Bearer {REDACTED}"


def test_bearer_token_inside_a_printed_header_mapping_is_redacted() -> None:
    text = f"request failed with headers {{'Authorization': 'Bearer {TOKEN}', 'Accept': 'application/json'}}"

    assert TOKEN not in redact_text(text)
    assert "'Accept': 'application/json'" in redact_text(text)


@pytest.mark.parametrize(
    "text",
    [
        f"POST failed with params {{'access_token': '{TOKEN}', 'import_type': 'instructure_csv'}}",
        f'response body: {{"access_token": "{TOKEN}", "token_type": "Bearer"}}',
        f'{{"access_token":"{TOKEN}"}}',
        f'{{"Message": "{{\\"access_token\\": \\"{TOKEN}\\"}}"}}',
        f"headers were {{'token': 'Bearer {TOKEN}'}}",
    ],
    ids=["python-repr", "json", "compact-json", "json-in-a-json-string", "bearer-under-a-token-key"],
)
def test_access_token_inside_a_printed_mapping_is_redacted(text: str) -> None:
    assert TOKEN not in redact_text(text)


@pytest.mark.parametrize("key", ["token", "access_token", "Authorization", "AUTHORIZATION", "canvas_token"])
def test_secret_keys_are_redacted_at_any_depth(key: str) -> None:
    value = {"request": {"headers": [{key: TOKEN, "accept": "json"}], "attempts": (1, {key: TOKEN})}}

    redacted = redact_value(value)

    assert redacted == {
        "request": {"headers": [{key: REDACTED, "accept": "json"}], "attempts": [1, {key: REDACTED}]}
    }


@pytest.mark.parametrize("key", ["token", "access_token", "authorization", "Authorization"])
def test_secret_keys_of_the_event_itself_are_redacted(key: str) -> None:
    out = redact(None, "info", {"event": "canvas.request", key: TOKEN})

    assert out == {"event": "canvas.request", key: REDACTED}


def test_processor_redacts_a_canvas_event_metadata_url() -> None:
    metadata = {"url": f"{BASE}?access_token={TOKEN}", "user_agent": "sis-uploader/2.1"}

    out = redact(None, "info", {"event": "sis_batch.applied", "metadata": metadata})

    assert out["metadata"] == {"url": f"{BASE}?access_token={REDACTED}", "user_agent": "sis-uploader/2.1"}


class Stdout:
    """What the daemon's real structlog configuration wrote to stdout (captured by pytest)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._text = ""

    def getvalue(self) -> str:
        self._text += self._capsys.readouterr().out
        return self._text


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str]) -> Iterator[Stdout]:
    yield Stdout(capsys)
    structlog.reset_defaults()


def lines(buffer: Stdout) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_configured_logger_never_writes_a_planted_token(stdout: Stdout) -> None:
    logs.configure("debug", "json")
    log = structlog.get_logger("test")

    log.info(
        f"fetching {BASE}?access_token={TOKEN}",
        metadata={"url": f"{BASE}?per_page=10&access_token={TOKEN}&page=2"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        token=TOKEN,
        nested=[{"deeper": {"access_token": TOKEN}}],
        note=f"Authorization: Bearer {TOKEN}",
    )

    assert stdout.getvalue()
    assert TOKEN not in stdout.getvalue()
    (line,) = lines(stdout)
    assert line["metadata"]["url"] == f"{BASE}?per_page=10&access_token={REDACTED}&page=2"
    assert line["token"] == REDACTED


def test_configured_logger_redacts_a_token_inside_an_exception_message(stdout: Stdout) -> None:
    logs.configure("debug", "json")
    log = structlog.get_logger("test")

    try:
        raise ConnectionError("GET " + BASE + "?access_token=" + TOKEN + " failed with Bearer " + TOKEN)
    except ConnectionError:
        log.exception("canvas.request_failed")

    assert TOKEN not in stdout.getvalue()
    (line,) = lines(stdout)
    assert "ConnectionError" in line["exception"]
    assert f"access_token={REDACTED}" in line["exception"]


def test_configured_logger_redacts_a_chained_exception(stdout: Stdout) -> None:
    logs.configure("info", "json")
    log = structlog.get_logger("test")

    try:
        try:
            raise ValueError({"access_token": TOKEN})
        except ValueError as inner:
            raise RuntimeError("retry failed") from inner
    except RuntimeError:
        log.error("canvas.request_failed", exc_info=True)

    assert "retry failed" in stdout.getvalue()
    assert TOKEN not in stdout.getvalue()


def test_console_format_never_writes_a_planted_token(stdout: Stdout) -> None:
    logs.configure("info", "console")
    log = structlog.get_logger("test")

    try:
        raise ConnectionError("GET " + BASE + "?access_token=" + TOKEN)
    except ConnectionError:
        log.exception("canvas.request_failed", url=f"{BASE}?access_token={TOKEN}", token=TOKEN)

    assert "canvas.request_failed" in stdout.getvalue()
    assert TOKEN not in stdout.getvalue()


def test_print_logger_factory_with_the_redact_processor_never_writes_a_planted_token() -> None:
    buffer = io.StringIO()
    structlog.configure(
        processors=[structlog.processors.format_exc_info, redact, structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(file=buffer),
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger("test")
        try:
            raise PermissionError(f"403 for {BASE}?access_token={TOKEN}")
        except PermissionError:
            log.exception("canvas.forbidden", authorization=f"Bearer {TOKEN}")
    finally:
        structlog.reset_defaults()

    assert "canvas.forbidden" in buffer.getvalue()
    assert TOKEN not in buffer.getvalue()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"https://canvas.example.edu/login?redirect=%2Fapi%3Faccess_token%3D{TOKEN}%26x%3D1", TOKEN),
        (f"{BASE}?next=%2Fapi%3FACCESS_TOKEN%3d{TOKEN}", TOKEN),
        (f"{BASE}?next=%252Fapi%253Faccess_token%253D{TOKEN}", TOKEN),
        (f"curl -H authorization={TOKEN} {BASE}", TOKEN),
        (f"headers: authorization%3DBearer%20{TOKEN}", TOKEN),
        ("Authorization: Basic dXNlcjpjb3JyZWN0LWhvcnNlLWJhdHRlcnk=", "dXNlcjpjb3JyZWN0LWhvcnNlLWJhdHRlcnk="),
        ('{"Authorization": "s3cr3t-v4lue"}', "s3cr3t-v4lue"),
        ("https://sis-robot:hunter2-long-password@canvas.example.edu/api/v1", "hunter2-long-password"),
    ],
    ids=[
        "url-encoded",
        "url-encoded-lower-3d",
        "double-encoded",
        "authorization=",
        "authorization%3D",
        "basic-auth-header",
        "authorization-json",
        "userinfo",
    ],
)
def test_encoded_and_unusual_forms_of_a_secret_are_redacted(text: str, secret: str) -> None:
    redacted = redact_text(text)

    assert secret not in redacted
    assert REDACTED in redacted
