"""What the submit tests share: SIS files, the real console script, and the store's view."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from consumer.core.events import SisBatchEvent, decode
from consumer.core.tracker import Observation
from consumer.handler import observation
from consumer.sandbox.canvas import SimulatedCanvas

SIS_CONSUMER = str(Path(sys.executable).with_name("sis-consumer"))
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


def clean_env(**env: str) -> dict[str, str]:
    """Only what a shell needs, plus `env`: nothing from the test runner's SIS_CONSUMER_* leaks in."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {**base, **env}


def canvas_env(canvas: SimulatedCanvas, store: Path, token: str | None = None) -> dict[str, str]:
    return clean_env(
        SIS_CONSUMER_CANVAS_URL=canvas.url,
        SIS_CONSUMER_CANVAS_TOKEN=token or canvas.tokens[ACCOUNT_ID],
        SIS_CONSUMER_STORE=f"sqlite:///{store}",
    )


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


async def cli(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60) -> Run:
    """The real console script, run without blocking the loop (a simulated Canvas may be on it)."""
    process = await asyncio.create_subprocess_exec(
        SIS_CONSUMER,
        *args,
        env=dict(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def cli_sync(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60) -> Run:
    """The same, for tests whose simulated Canvas runs on its own thread."""
    done = subprocess.run(
        [SIS_CONSUMER, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return Run(done.returncode, done.stdout, done.stderr)


def event_observation(body: str) -> Observation:
    """A published Live Event (the SQS message body) as the daemon's handler turns it into tracker input."""
    decoded = decode(body)
    assert isinstance(decoded, SisBatchEvent), decoded
    return observation(decoded)
