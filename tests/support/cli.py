"""The real `sis-consumer` console script, run as a user would, with only the environment given."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SIS_CONSUMER = str(Path(sys.executable).with_name("sis-consumer"))


@dataclass(frozen=True, slots=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def clean_env(**env: str) -> dict[str, str]:
    """Only what a shell needs, plus `env`: nothing from the test runner's SIS_CONSUMER_* leaks in."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {**base, **env}


def run_cli(*args: str, env: Mapping[str, str], cwd: Path, timeout: float = 60) -> Run:
    """The console script, blocking: for tests whose simulated Canvas (if any) runs on its own thread."""
    done = subprocess.run(
        [SIS_CONSUMER, *args], env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    return Run(done.returncode, done.stdout, done.stderr)


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
