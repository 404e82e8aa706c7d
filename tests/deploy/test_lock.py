"""The image's lock files agree with pyproject.toml, and the check that says so catches each drift."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support import lockfile

RUNTIME = lockfile.RUNTIME_LOCK.read_text(encoding="utf-8")


def _declared_runtime() -> list[Requirement]:
    return lockfile.declared()[lockfile.RUNTIME_LOCK]


@pytest.mark.parametrize("lock", [lockfile.RUNTIME_LOCK, lockfile.BUILD_LOCK], ids=lambda p: p.name)
def test_lock_is_up_to_date_with_pyproject(lock: Path) -> None:
    found = lockfile.check()[lock]
    assert not found, f"{lock.name} is out of date with pyproject.toml (run `make lock`): " + "; ".join(found)


def test_a_dependency_added_to_pyproject_but_not_locked_is_reported() -> None:
    found = lockfile.problems([*_declared_runtime(), Requirement("httpx>=0.27")], RUNTIME)
    assert found == ["httpx>=0.27 is not pinned"]


def test_a_specifier_the_pinned_version_no_longer_satisfies_is_reported() -> None:
    requirements = [Requirement("aiohttp>=999") if r.name == "aiohttp" else r for r in _declared_runtime()]
    (problem,) = lockfile.problems(requirements, RUNTIME)
    assert problem.startswith("aiohttp==")
    assert problem.endswith("does not satisfy aiohttp>=999")


def test_a_dependency_removed_from_pyproject_but_still_locked_is_reported() -> None:
    requirements = [r for r in _declared_runtime() if r.name != "structlog"]
    assert lockfile.problems(requirements, RUNTIME) == [
        "structlog is pinned as a direct requirement but no longer declared"
    ]


def test_a_pin_without_hashes_is_reported() -> None:
    text = "structlog==24.1.0\n    # via sis-consumer (pyproject.toml)\n"
    assert lockfile.problems([Requirement("structlog>=24.1")], text) == ["structlog==24.1.0 has no hash"]


def test_the_runtime_lock_carries_no_sandbox_dependency() -> None:
    """boto3 and moto are for the demo and the tests (extras), not for the production image."""
    pinned = set(lockfile.parse(RUNTIME))
    assert not pinned & {"boto3", "moto", "pytest"}
    assert {"aiobotocore", "aiohttp", "structlog"} <= pinned
