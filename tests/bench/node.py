"""The Node side of the benchmark, installed by the benchmark itself.

`tests/bench/node/` holds a tiny npm project (exact pins and a lockfile: fauxqs 1.9.2, sqs-consumer
14.2.8, the AWS SDK they share) and its two scripts. It is installed with `npm ci` into
`tests/bench/.node/` (gitignored), again whenever the lockfile changes; the scripts are copied beside
their `node_modules` so that Node resolves the pinned packages.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
SOURCE: Final = BENCH_DIR / "node"
HOME: Final = BENCH_DIR / ".node"
MIN_NODE_MAJOR: Final = 20
MANIFESTS: Final = ("package.json", "package-lock.json")


class NodeUnavailable(RuntimeError):
    pass


def node() -> str:
    path = shutil.which("node")
    if path is None:
        raise NodeUnavailable("`node` is not on PATH: the benchmark needs Node >= 20 for fauxqs")
    return path


def node_version() -> str:
    done = subprocess.run([node(), "--version"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def ensure_installed() -> Path:
    """Install the pinned Node packages once; returns the directory the scripts run from."""
    version = node_version()
    major = int(version.lstrip("v").split(".")[0])
    if major < MIN_NODE_MAJOR:
        raise NodeUnavailable(f"Node {version} is too old: the benchmark needs Node >= {MIN_NODE_MAJOR}")
    digest = hashlib.sha256(b"".join((SOURCE / name).read_bytes() for name in MANIFESTS)).hexdigest()
    stamp = HOME / ".installed"
    if not (stamp.exists() and stamp.read_text() == digest and (HOME / "node_modules").is_dir()):
        npm = shutil.which("npm")
        if npm is None:
            raise NodeUnavailable("`npm` is not on PATH: it installs fauxqs and sqs-consumer")
        HOME.mkdir(parents=True, exist_ok=True)
        for name in MANIFESTS:
            shutil.copyfile(SOURCE / name, HOME / name)
        print(f"bench: installing the pinned Node packages into {HOME} (npm ci)...", flush=True)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HOME,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise NodeUnavailable(f"npm ci failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        stamp.write_text(digest)
    for script in SOURCE.glob("*.js"):
        shutil.copyfile(script, HOME / script.name)
    return HOME
