"""podman, set up for the host it finds itself on.

Podman's defaults assume a systemd host with generous limits. Where that is not so, a container
does not start: crun refuses a hybrid cgroup v1/v2 layout, the default `nofile`/`nproc` ulimits
exceed this process's hard limits (without CAP_SYS_RESOURCE runc cannot raise them), there is no
systemd to manage cgroups and no journald for events. Each condition is detected here and answered
in a generated containers.conf (pointed to by CONTAINERS_CONF); on a host where none holds, the
file is empty and podman keeps its own defaults.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# podman's own default for both limits (containers/common), used when containers.conf sets none.
PODMAN_DEFAULT_LIMIT = 1_048_576
INSTALL = "run `scripts/bootstrap test` (as root on Debian/Ubuntu) or install podman"


def _mounts() -> dict[str, str]:
    """Mount point -> file system type."""
    mounts: dict[str, str] = {}
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3:
            mounts[fields[1]] = fields[2]
    return mounts


def _hybrid_cgroups() -> bool:
    """cgroup v1 controllers with a cgroup2 tree beside them (systemd's "hybrid" layout)."""
    mounts = _mounts()
    return mounts.get("/sys/fs/cgroup") != "cgroup2" and "cgroup2" in mounts.values()


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return PODMAN_DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class HostSettings:
    """What this host needs from containers.conf; None or empty keeps podman's default."""

    runtime: str | None
    cgroup_manager: str | None
    events_logger: str | None
    ulimits: tuple[str, ...]

    @classmethod
    def detect(cls) -> HostSettings:
        runtime = "runc" if _hybrid_cgroups() and shutil.which("runc") else None
        # sd_booted(): systemd runs the host exactly when this directory exists.
        systemd = Path("/run/systemd/system").is_dir()
        journald = Path("/run/systemd/journal/socket").exists()
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        ulimits: tuple[str, ...] = ()
        if 0 <= nofile < PODMAN_DEFAULT_LIMIT:
            # Setting one limit drops podman's default for the other, so both are given. podman's
            # nproc default is pid_max (it lowers its own limit to that); keep it, within ours.
            nproc_limit = _pid_max() if nproc == resource.RLIM_INFINITY else min(_pid_max(), nproc)
            ulimits = (f"nofile={nofile}:{nofile}", f"nproc={nproc_limit}:{nproc_limit}")
        return cls(
            runtime=runtime,
            cgroup_manager=None if systemd else "cgroupfs",
            events_logger=None if journald else "file",
            ulimits=ulimits,
        )

    def containers_conf(self) -> str:
        containers = [f"default_ulimits = {json.dumps(list(self.ulimits))}"] if self.ulimits else []
        engine = [
            f'{key} = "{value}"'
            for key, value in (
                ("runtime", self.runtime),
                ("cgroup_manager", self.cgroup_manager),
                ("events_logger", self.events_logger),
            )
            if value
        ]
        return "\n".join(["[containers]", *containers, "", "[engine]", *engine, ""])


class PodmanError(AssertionError):
    pass


class Podman:
    """`podman` with this host's containers.conf; each call returns the finished process."""

    def __init__(self, workdir: Path, settings: HostSettings | None = None) -> None:
        executable = shutil.which("podman")
        if executable is None:
            raise PodmanError(f"podman is not installed: {INSTALL}")
        self.executable = executable
        self.settings = settings or HostSettings.detect()
        self.conf = workdir / "containers.conf"
        self.conf.write_text(self.settings.containers_conf())
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}

    def __call__(
        self,
        *args: str,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.executable, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise PodmanError(
                f"podman {shlex.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            )
        return done

    def inspect(self, *names: str, kind: str = "container") -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self(kind, "inspect", *names).stdout)
        return found
