"""Without a Canvas token nothing can be reconciled: the daemon and `check-config` say so."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from consumer.sandbox.local_sqs import Queues
from tests.e2e.daemon import SIS_CONSUMER
from tests.reconcile.conftest import DaemonFactory
from tests.reconcile.helpers import NO_CANVAS, SLACK, lines
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_the_daemon_warns_that_it_has_no_canvas_token(daemon_for: DaemonFactory) -> None:
    daemon = daemon_for(None, **NO_CANVAS)
    [warning] = wait_until(lambda: lines(daemon, "daemon.no_canvas_token"), timeout=SLACK, what="the warning")
    assert warning["level"] == "warning"
    assert "silent aborts" in warning["detail"]
    assert daemon.stop() == 0
    assert not [line for line in daemon.log_lines() if str(line["event"]).startswith("reconcile.")]


def test_check_config_says_silent_aborts_cannot_be_detected(queues: Queues) -> None:
    env = {**os.environ, **queues.env(), **NO_CANVAS}
    done = subprocess.run([SIS_CONSUMER, "check-config"], env=env, capture_output=True, check=True, text=True)
    described = json.loads(done.stdout)
    assert "silent aborts" in described["canvas_token"]
    assert "cannot be detected" in described["canvas_token"]
