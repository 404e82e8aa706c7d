"""Real Prometheus and Alertmanager (Debian's packages) on loopback, and a webhook that records pages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from consumer.sandbox.local_sqs import free_port
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RULES = REPO / "deploy" / "prometheus" / "alerts.yaml"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} is missing: apt-get install prometheus prometheus-alertmanager")
    return path


IMPORT_ALERTS = ("SisImport", "SisLiveEvents")
"""Alerts about imports: their `for:` only guards against flapping, so a test may shorten it. The
daemon's own alerts keep theirs (minutes): a test restarting the daemon is not a daemon down."""


def derive_rules(target: Path, for_: str, *, keep_firing: bool = True) -> Path:
    """The shipped rules with the `for:` of the import alerts set to `for_`, nothing else changed
    (`keep_firing=False` drops `keep_firing_for`, to show what it prevents)."""
    rules = yaml.safe_load(SHIPPED_RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule["alert"].startswith(IMPORT_ALERTS):
                rule["for"] = for_
            if not keep_firing:
                rule.pop("keep_firing_for", None)
    target.write_text(yaml.safe_dump(rules, sort_keys=False))
    return target


class Webhook:
    """Records every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for note in self.received for alert in note.get("alerts", [])]

    def notifications(self, alertname: str) -> list[dict[str, Any]]:
        """The notifications that carried `alertname` firing."""
        return [
            note
            for note in self.received
            if any(
                a["labels"]["alertname"] == alertname and a["status"] == "firing"
                for a in note.get("alerts", [])
            )
        ]

    @contextmanager
    def running(self) -> Iterator[Webhook]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.loads(response.read())


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def alertmanager(workdir: Path, webhook_url: str) -> Iterator[str]:
    port = free_port()
    config = {
        "route": {
            "receiver": "nobody",
            "group_by": ["alertname", "account"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
            "routes": [{"receiver": "pager", "matchers": ['severity="page"']}],
        },
        "receivers": [
            {"name": "nobody"},
            {"name": "pager", "webhook_configs": [{"url": webhook_url, "send_resolved": False}]},
        ],
    }
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus-alertmanager"),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port on every interface
    ]
    with _serving(command, port, workdir / "alertmanager.log") as url:
        yield url


@contextmanager
def prometheus(workdir: Path, rules: Path, target: str, alertmanager_url: str) -> Iterator[str]:
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.removeprefix("http://")]}]}]
        },
        "scrape_configs": [{"job_name": "sis-consumer", "static_configs": [{"targets": [target]}]}],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with _serving(command, port, workdir / "prometheus.log") as url:
        yield url


@contextmanager
def _serving(command: list[str], port: int, log: Path) -> Iterator[str]:
    """Run a Prometheus-family server until the block ends; yields its URL once /-/ready."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _ready(url + "/-/ready"), timeout=30, what=f"{Path(command[0]).name} ready")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def firing(prometheus_url: str) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = _get(prometheus_url + "/api/v1/alerts")["data"]["alerts"]
    return [a for a in alerts if a["state"] == "firing"]


def evaluated_after(prometheus_url: str, moment: datetime) -> bool:
    """Every rule group has been evaluated after `moment`."""
    groups = _get(prometheus_url + "/api/v1/rules")["data"]["groups"]
    return bool(groups) and all(_rfc3339(g["lastEvaluation"]) > moment for g in groups)


def _rfc3339(text: str) -> datetime:
    # Go writes nanoseconds and Z; Python takes at most microseconds.
    match = re.fullmatch(r"([^.Z+]+)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert match is not None, text
    whole, fraction, zone = match.groups()
    fraction = f".{fraction[:6]}" if fraction else ""
    return datetime.fromisoformat(whole + fraction + ("+00:00" if zone == "Z" else zone))


def has_series(prometheus_url: str, query: str) -> bool:
    params = urllib.parse.urlencode({"query": query})
    return bool(_get(f"{prometheus_url}/api/v1/query?{params}")["data"]["result"])
