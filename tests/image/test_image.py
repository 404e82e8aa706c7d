"""deploy/Dockerfile, built and run: what an operator relies on, checked from outside the container.

The stop test comes last: it ends the module's container.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.sandbox.local_sqs import LocalSqs
from tests.support import image_base as base
from tests.support.image import CA_TARGET, FIGURES, Container
from tests.support.live_events import lifecycle
from tests.support.podman import Podman
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.image, pytest.mark.timeout(900)]

GRACE_SECONDS = 25  # SIS_CONSUMER_SHUTDOWN_GRACE's default, which the image keeps


def test_the_daemon_is_pid_1_running_as_uid_10001(container: Container) -> None:
    status = dict(line.split(":", 1) for line in container.exec("cat", "/proc/1/status").splitlines())
    assert status["Uid"].split() == ["10001"] * 4
    assert status["Gid"].split() == ["10001"] * 4
    argv = container.exec("cat", "/proc/1/cmdline").split("\0")
    assert argv[-3:] == ["/opt/venv/bin/sis-consumer", "run", ""]


def test_the_root_is_read_only_and_the_store_is_on_the_data_volume(container: Container) -> None:
    (inspected,) = container.podman.inspect(container.name)
    assert inspected["HostConfig"]["ReadonlyRootfs"] is True
    (data,) = [m for m in inspected["Mounts"] if m["Destination"] == "/data"]
    assert data["Type"] == "volume"
    refused = container.podman("exec", container.name, "touch", "/opt/venv/planted", check=False)
    assert refused.returncode != 0
    assert "Read-only file system" in refused.stderr
    assert container.exec("stat", "-c", "%u %s", "/data/state.db").split()[0] == "10001"


def test_livez_and_readyz_answer_200_from_outside(container: Container) -> None:
    assert container.status("/livez") == 200
    assert container.status("/readyz") == 200


def test_a_sis_event_on_the_queue_shows_up_in_imports_run_inside_the_container(
    container: Container, local_sqs: LocalSqs
) -> None:
    events = lifecycle(
        account_uuid="acct-uuid-image",
        account_id=1,
        sis_batch_id=4242,
        states=["initializing", "created", "importing", "imported"],
        start=datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
        url_token=container.token,  # Canvas puts a client's token in metadata.url
    )
    sqs = local_sqs.client()
    for body in events:
        sqs.send_message(QueueUrl=container.queues.queue_url, MessageBody=body)

    def imported() -> dict[str, Any]:
        listed = json.loads(container.exec("sis-consumer", "imports", "--json"))
        found = [i for i in listed if i["sis_batch_id"] == 4242 and i["state"] == "imported"]
        return found[0] if found else {}

    record = wait_until(imported, timeout=60, interval=0.5, what="import 4242 in `imports --json`")
    assert record["account"] == "acct-uuid-image"


def test_the_healthcheck_passes(container: Container) -> None:
    done = container.podman("healthcheck", "run", container.name, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_token_is_used_but_never_shown_by_inspect_or_the_logs(container: Container) -> None:
    described = json.loads(container.exec("sis-consumer", "check-config"))
    assert described["canvas_token"] == "******** (set)"  # read from the secret file
    inspected = container.podman("inspect", container.name).stdout
    assert container.token not in inspected
    logs = container.logs()
    assert '"event": "daemon.started"' in logs
    assert container.token not in logs


def test_the_image_holds_no_installer_no_sandbox_and_not_the_hosts_ca_bundle(
    podman: Podman, image: str
) -> None:
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('pip', 'setuptools', 'boto3', 'moto', 'pytest') if u.find_spec(m)])"
    )
    run = ["run", "--rm", "--no-healthcheck", "--network=none", "--entrypoint=python"]
    assert podman(*run, image, "-c", probe).stdout.strip() == "[]"
    checksum = ["run", "--rm", "--no-healthcheck", "--network=none", "--entrypoint=sha256sum"]
    # The build mounts the host's bundle for pip; the image must keep the base's own.
    assert podman(*checksum, image, CA_TARGET).stdout == podman(*checksum, base.NAME, CA_TARGET).stdout


def test_demo_in_the_image_says_in_one_line_which_extra_to_install(podman: Podman, image: str) -> None:
    done = podman("run", "--rm", "--no-healthcheck", "--network=none", image, "demo", check=False)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("sis-consumer: demo needs the sandbox extra")
    assert line.endswith("pip install 'sis-consumer[sandbox]'")


def test_sigterm_stops_the_daemon_with_exit_0_within_the_shutdown_grace(container: Container) -> None:
    started = time.monotonic()
    container.podman("stop", f"--time={GRACE_SECONDS + 20}", container.name, timeout=GRACE_SECONDS + 60)
    elapsed = time.monotonic() - started
    FIGURES["stop (SIGTERM to exit)"] = f"{elapsed:.1f} s (grace {GRACE_SECONDS} s)"
    (inspected,) = container.podman.inspect(container.name)
    assert inspected["State"]["ExitCode"] == 0, container.logs()[-3000:]
    assert elapsed < GRACE_SECONDS
    assert '"forced": false' in container.logs()
