"""Are the image's lock files (`make lock`) still true to pyproject.toml? Checked offline.

Re-resolving and comparing would fail whenever PyPI publishes a release; instead the lock is read
as it is: every requirement pyproject.toml declares must be pinned to a version its specifier
allows, every pin must carry hashes (pip's --require-hashes), and every pin that uv marked as a
direct requirement must still be declared (a dependency removed from pyproject.toml must leave the
lock too).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
RUNTIME_LOCK = REPO / "deploy" / "requirements.lock"
BUILD_LOCK = REPO / "deploy" / "build-requirements.lock"

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_FROM_PYPROJECT = "(pyproject.toml)"


@dataclass
class Pin:
    version: Version
    hashes: int = 0
    via: list[str] = field(default_factory=list)

    @property
    def direct(self) -> bool:
        """uv annotates requirements of pyproject.toml, and leaves those read from stdin bare."""
        return not self.via or any(_FROM_PYPROJECT in parent for parent in self.via)


def parse(text: str) -> dict[str, Pin]:
    """`name==version` entries of a `uv pip compile --generate-hashes` output, with hashes and parents."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in text.splitlines():
        stripped = line.strip()
        match = _PIN.match(line)
        if match:
            current = pins[canonicalize_name(match[1])] = Pin(Version(match[2]))
            in_via = False
        elif current is None or not stripped:
            continue
        elif stripped.startswith("--hash=sha256:"):
            current.hashes += 1
        elif stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            current.via += [rest] if rest else []
            in_via = True
        elif in_via and stripped.startswith("#   "):
            current.via.append(stripped.removeprefix("#").strip())
    return pins


def declared(pyproject_path: Path = PYPROJECT) -> dict[Path, list[Requirement]]:
    """What each lock must satisfy: the runtime dependencies, and the build backend."""
    with pyproject_path.open("rb") as handle:
        pyproject = tomllib.load(handle)
    return {
        RUNTIME_LOCK: [Requirement(r) for r in pyproject["project"]["dependencies"]],
        BUILD_LOCK: [Requirement(r) for r in pyproject["build-system"]["requires"]],
    }


def problems(requirements: Iterable[Requirement], lock_text: str) -> list[str]:
    """Why the lock does not match the requirements; empty when it does."""
    pins = parse(lock_text)
    found: list[str] = []
    if not pins:
        return ["it pins nothing"]
    names = set()
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        names.add(name)
        pin = pins.get(name)
        if pin is None:
            found.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            found.append(f"{name}=={pin.version} does not satisfy {requirement}")
    found += [
        f"{name} is pinned as a direct requirement but no longer declared"
        for name, pin in pins.items()
        if pin.direct and name not in names
    ]
    found += [f"{name}=={pin.version} has no hash" for name, pin in pins.items() if not pin.hashes]
    return found


def check() -> dict[Path, list[str]]:
    return {
        lock: problems(requirements, lock.read_text(encoding="utf-8"))
        for lock, requirements in declared().items()
    }
