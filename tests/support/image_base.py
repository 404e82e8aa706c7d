"""A stand-in for `python:3.11-slim-bookworm`, made from Debian's own packages.

No container registry is reachable from the test machines, so the Dockerfile's base cannot be
pulled. debootstrap builds the same distribution (Debian bookworm, Python 3.11) from the host's
Debian mirror; the trimmed root file system is cached as a tarball (debootstrap takes over a
minute) and imported under the base's name, so that deploy/Dockerfile builds unmodified.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.podman import Podman

NAME = "localhost/python:3.11-slim-bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates", "python-is-python3")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What python:3.11-slim leaves out too: documentation, manuals, translations, package lists.
TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists")
# Changing any of these changes the tarball; the key names the cache file and labels the image.
KEY = hashlib.sha256(repr((SUITE, PACKAGES, TRIM)).encode()).hexdigest()[:12]
LABEL = "org.sis-consumer.stand-in"


def cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "sis-consumer"


def _apt_sources() -> list[tuple[list[str], list[str]]]:
    """(URIs, suites) of the host's `deb` sources, deb822 files and one-line lists alike."""
    found: list[tuple[list[str], list[str]]] = []
    apt = Path("/etc/apt")
    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in path.read_text(errors="replace").split("\n\n"):
            fields: dict[str, list[str]] = {}
            for line in stanza.splitlines():
                key, sep, value = line.partition(":")
                if sep and not line.startswith(("#", " ")):
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                found.append((fields.get("uris", []), fields.get("suites", [])))
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
                if len(words) >= 3 and words[0] == "deb":
                    found.append(([words[1]], [words[2]]))
    return found


def host_mirror() -> str:
    """The host's Debian mirror (it may be a local proxy or the only one reachable); else Debian's."""
    sources = _apt_sources()
    for uris, suites in sources:
        if SUITE in suites and uris:
            return uris[0]
    for uris, _ in sources:
        for uri in uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return DEFAULT_MIRROR


def rootfs_tarball() -> Path:
    """The cached, trimmed root file system; built by debootstrap on the first call."""
    tarball = cache_dir() / f"python-3.11-{SUITE}-{KEY}.tar"
    if tarball.exists():
        return tarball
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise AssertionError("debootstrap is not installed: run `scripts/bootstrap test`")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        command = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(rootfs),
            host_mirror(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            log = (rootfs / "debootstrap" / "debootstrap.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}\n{log}")
        for part in TRIM:
            for child in (rootfs / part).glob("*"):
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        partial = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True, timeout=300)
        partial.rename(tarball)  # atomic: a concurrent run sees the whole file or none
    return tarball


def ensure(podman: Podman) -> bool:
    """Import the stand-in base unless podman already holds this very one; True when it did."""
    if podman("image", "exists", NAME, check=False).returncode == 0:
        labels = podman.inspect(NAME, kind="image")[0]["Config"].get("Labels") or {}
        if labels.get(LABEL) == KEY:
            return False
    changes = [f"LABEL {LABEL}={KEY}", "ENV LANG=C.UTF-8", 'CMD ["python3"]']
    podman("import", *(f"--change={c}" for c in changes), str(rootfs_tarball()), NAME, timeout=300)
    return True
