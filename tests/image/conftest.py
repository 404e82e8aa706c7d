"""The real image: deploy/Dockerfile built with podman on a stand-in base, run against moto's SQS.

Session fixtures build once; the figures (build time, size, stop time) are printed at the end of
the run, under "sis-consumer image".
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.sandbox.local_sqs import LocalSqs, free_port
from tests.support import image_base as base
from tests.support.image import CA_TARGET, FIGURES, Container
from tests.support.podman import Podman, PodmanError
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy" / "Dockerfile"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "sis-consumer image")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name:<28} {value}")


def host_ca_bundle() -> Path | None:
    """The certificate authorities this host trusts (a proxy's may be among them)."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), CA_TARGET):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    try:
        return Podman(tmp_path_factory.mktemp("podman"))
    except PodmanError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def image(podman: Podman) -> Iterator[str]:
    """deploy/Dockerfile, unmodified, built for this session under a tag of its own."""
    started = time.monotonic()
    imported = base.ensure(podman)
    FIGURES["stand-in base"] = f"{time.monotonic() - started:.0f} s ({'made' if imported else 'cached'})"
    tag = f"localhost/sis-consumer:test-{secrets.token_hex(4)}"
    build = ["build", "--pull=never", "--network=host", "--format=docker", "-f", str(DOCKERFILE), "-t", tag]
    ca = host_ca_bundle()
    if ca is not None:  # for pip inside the build only: a RUN-time mount is never committed
        build.append(f"--volume={ca}:{CA_TARGET}:ro")
    started = time.monotonic()
    podman(*build, str(REPO), timeout=900)
    FIGURES["build"] = f"{time.monotonic() - started:.0f} s"
    size = podman.inspect(tag, kind="image")[0]["Size"]
    FIGURES["image size"] = f"{size / 1e6:.0f} MB"
    try:
        yield tag
    finally:
        podman("rmi", tag, check=False)


@pytest.fixture(scope="module")
def container(
    podman: Podman, image: str, local_sqs: LocalSqs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """The image run as an operator would: read-only root, a /data volume, the token in a file
    mounted read-only (as Compose and Kubernetes mount secrets), on the host network (moto listens
    on loopback); the Canvas URL leads nowhere, so the reconciler's errors are logged."""
    suffix = secrets.token_hex(4)
    name, volume = f"sis-consumer-test-{suffix}", f"sis-data-{suffix}"
    queues = local_sqs.create_queues()
    token = f"7~PlantedImageToken{secrets.token_hex(16)}"
    token_file = tmp_path_factory.mktemp("secret") / "token"
    token_file.write_text(token)
    token_file.chmod(0o644)  # the daemon reads it as uid 10001
    port = free_port()
    env = {
        **queues.env(),
        "SIS_CONSUMER_METRICS_ADDR": f"127.0.0.1:{port}",
        "SIS_CONSUMER_CANVAS_URL": f"http://127.0.0.1:{free_port()}",
        "SIS_CONSUMER_CANVAS_TOKEN_FILE": "/run/secrets/canvas-token",
    }
    running = Container(podman, name, port, queues, token)
    try:
        podman(
            "run", "--detach", f"--name={name}", "--network=host", "--read-only",
            f"--volume={volume}:/data", f"--volume={token_file}:/run/secrets/canvas-token:ro",
            *(f"--env={key}={value}" for key, value in env.items()),
            image,
        )  # fmt: skip
        wait_until(running.ready, timeout=60, what="/readyz of the container")
        yield running
    finally:
        podman("rm", "--force", "--time=0", name, check=False)
        podman("volume", "rm", "--force", volume, check=False)
