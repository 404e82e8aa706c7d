"""What submit and intake tests share: small SIS files, the environment `submit` needs, and how
the daemon's handler sees a published event."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

from consumer.core.events import SisBatchEvent, decode
from consumer.core.tracker import Observation
from consumer.daemon.handler import observation
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.cli import clean_env

USERS_CSV = (
    b"user_id,login_id,first_name,last_name,status\nu1,ada,Ada,Lovelace,active\nu2,alan,Alan,Turing,active\n"
)
ACCOUNT_ID = 1
"""The root account whose token the tests use."""


def sis_file(directory: Path, name: str) -> Path:
    """A small SIS upload: a users CSV, or a zip holding it (by `name`'s suffix)."""
    path = directory / name
    if name.endswith(".zip"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("users.csv", USERS_CSV)
        path.write_bytes(buffer.getvalue())
    else:
        path.write_bytes(USERS_CSV)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def canvas_env(canvas: SimulatedCanvas, store: Path, token: str | None = None) -> dict[str, str]:
    return clean_env(
        SIS_CONSUMER_CANVAS_URL=canvas.url,
        SIS_CONSUMER_CANVAS_TOKEN=token or canvas.tokens[ACCOUNT_ID],
        SIS_CONSUMER_STORE=f"sqlite:///{store}",
    )


def event_observation(body: str) -> Observation:
    """A published Live Event (the SQS message body) as the daemon's handler turns it into tracker input."""
    decoded = decode(body)
    assert isinstance(decoded, SisBatchEvent), decoded
    return observation(decoded)
