"""The image under test, run by podman: what the image tests ask of a running container, and the
figures (build time, size, stop time) printed at the end of the run."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from consumer.sandbox.local_sqs import Queues
from tests.support.podman import Podman

CA_TARGET = "/etc/ssl/certs/ca-certificates.crt"
FIGURES: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Container:
    podman: Podman
    name: str
    port: int
    queues: Queues
    token: str

    def exec(self, *args: str, check: bool = True) -> str:
        return self.podman("exec", self.name, *args, check=check).stdout

    def status(self, path: str) -> int:
        """HTTP status of the daemon's endpoint, asked from outside the container."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, ConnectionError):
            return 0

    def ready(self) -> bool:
        if self.status("/readyz") == 200:
            return True
        (inspected,) = self.podman.inspect(self.name)
        if not inspected["State"]["Running"]:
            raise AssertionError(f"the container exited:\n{self.logs()[-3000:]}")
        return False

    def logs(self) -> str:
        done = self.podman("logs", self.name)
        return done.stdout + done.stderr
