"""Real Prometheus and Alertmanager (Debian's packages) on loopback, a webhook that records pages,
and the shipped Alertmanager configuration with its receivers pointed at them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from consumer.sandbox.local_sqs import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
SHIPPED_RULES = REPO / "deploy" / "prometheus" / "alerts.yaml"
SHIPPED_ALERTMANAGER = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


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
    """Records every notification Alertmanager posts (a webhook's, PagerDuty's), and where to."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        posted = self.posted

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                posted.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return self.url.removesuffix("/hook")

    @property
    def received(self) -> list[dict[str, Any]]:
        """What was posted to `url`."""
        return self.at("/hook")

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for posted_to, body in list(self.posted) if posted_to == path]

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
    """Pages (severity page) go to `webhook_url`, quickly; nothing else is sent anywhere."""
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
    with running_alertmanager(workdir, config) as url:
        yield url


@contextmanager
def running_alertmanager(workdir: Path, config: Mapping[str, Any]) -> Iterator[str]:
    port = free_port()
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(dict(config)))
    command = [
        tool("prometheus-alertmanager"),
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip port on every interface
    ]
    with _serving(command, port, workdir / "alertmanager.log") as url:
        yield url


ALERTNAMES = "{{ range .Alerts }}{{ .Labels.alertname }} {{ end }}"
TIME_SCALE = 60
"""The shipped route timings run this many times faster in tests: a minute takes a second."""


def shipped_alertmanager(webhook: Webhook, smtp_port: int) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml as shipped, but for its receivers (PagerDuty's events
    posted to `webhook` at /pagerduty, the heartbeat to /heartbeat, mail to the SMTP sink on
    `smtp_port`, each PagerDuty event with the names of its alerts in its `alertnames` detail) and
    its route timings, TIME_SCALE times shorter. Routes, grouping, inhibitions and templates are
    the shipped ones."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_ALERTMANAGER.read_text())
    config["global"].update(smtp_smarthost=f"127.0.0.1:{smtp_port}", smtp_require_tls=False)
    config["templates"] = [str(SHIPPED_ALERTMANAGER.parent / t) for t in config.get("templates", [])]
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = f"{webhook.base}/pagerduty"
            # For the tests to tell which alerts an event is about, whatever its summary says.
            pagerduty.setdefault("details", {})["alertnames"] = ALERTNAMES
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook.base}/heartbeat"
    _faster(config["route"])
    return config


def _faster(route: dict[str, Any]) -> None:
    for key in ("group_wait", "group_interval", "repeat_interval"):
        if key in route:
            route[key] = f"{round(_seconds(route[key]) * 1000 / TIME_SCALE)}ms"
    for child in route.get("routes", []):
        _faster(child)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)([smh])", duration)
    assert match is not None, f"a duration this helper does not read: {duration}"
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def shipped_alert(name: str, annotations: Mapping[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """Alert `name` as the shipped rules label it (severity, service...), plus `labels` (the ones
    its expression keeps: account, sis_batch_id...)."""
    rules = yaml.safe_load(SHIPPED_RULES.read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == name]
    return {"labels": {"alertname": name, **rule["labels"], **labels}, "annotations": dict(annotations or {})}


def post_alerts(alertmanager_url: str, *alerts: Mapping[str, Any]) -> None:
    """Send firing alerts as Prometheus does: POST /api/v2/alerts, each with its labels,
    annotations, `startsAt`, an `endsAt` ahead (Prometheus renews it while the alert fires) and
    its `generatorURL`. `alerts`: {"labels": ..., "annotations": ...}."""
    now = datetime.now(UTC)
    body = [
        {
            "labels": dict(a["labels"]),
            "annotations": dict(a.get("annotations", {})),
            "startsAt": _rfc3339_of(now - timedelta(minutes=5)),
            "endsAt": _rfc3339_of(now + timedelta(hours=1)),
            "generatorURL": "http://prometheus.example.edu/graph",
        }
        for a in alerts
    ]
    _post(f"{alertmanager_url}/api/v2/alerts", body)


def silence(alertmanager_url: str, comment: str, **equal: str) -> None:
    """A silence for an hour of every alert whose labels equal `equal`."""
    now = datetime.now(UTC)
    matchers = [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in equal.items()]
    _post(
        f"{alertmanager_url}/api/v2/silences",
        {
            "matchers": matchers,
            "startsAt": _rfc3339_of(now - timedelta(minutes=1)),
            "endsAt": _rfc3339_of(now + timedelta(hours=1)),
            "createdBy": "tests",
            "comment": comment,
        },
    )


def alertmanager_alerts(alertmanager_url: str) -> dict[str, dict[str, Any]]:
    """Alertmanager's alerts by alertname (+ sis_batch_id when it has one), with their `status`
    (`state` active or suppressed, `inhibitedBy`, `silencedBy`)."""
    found: list[dict[str, Any]] = _get(f"{alertmanager_url}/api/v2/alerts")
    return {
        " ".join(filter(None, (a["labels"]["alertname"], a["labels"].get("sis_batch_id")))): a for a in found
    }


def _post(url: str, body: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200, response.status


def _rfc3339_of(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
