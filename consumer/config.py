"""One frozen settings object, built from an environment mapping and validated as a whole."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

from consumer.core.drop_folder_rules import IntakeRule, load_rules
from consumer.core.learned import HISTORY_SIZE, Learning
from consumer.core.stuck import StuckThresholds
from consumer.errors import ConfigError

PREFIX: Final = "SIS_CONSUMER_"
SQLITE: Final = "sqlite:///"
DYNAMODB: Final = "dynamodb://"
DEFAULT_STORE: Final = "sqlite:///sis-consumer-state.db"
DEFAULT_METRICS_ADDR: Final = "127.0.0.1:9464"
NO_TOKEN_NOTE: Final = "(not set: silent aborts and lost events cannot be detected)"  # noqa: S105

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")
_QUERY = re.compile(r"[?#].*$", re.DOTALL)
_QUEUE_REGION = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ACCOUNT_UUID = re.compile(r"^[A-Za-z0-9]{40}$")
"""A Canvas root account UUID: 40 letters and digits (what Live Events carry as `root_account_uuid`)."""
LIVE_EVENTS_PREFIX: Final = "canvas-live-events"
_WHY_STANDARD: Final = {
    "QUEUE_URL": "Canvas delivers Live Events to standard queues only",
    "DLQ_URL": "the dead-letter queue of a standard queue must be standard too",
    "INTAKE_QUEUE_URL": "S3 sends event notifications to standard queues only",
}


class Secret:
    """A value that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def masked_url(url: str) -> str:
    """The URL without what may be a secret: its `user:password@` and its query string."""
    url = _USERINFO.sub(r"\1[REDACTED]@", url, count=1)
    return _QUERY.sub("?[REDACTED]", url, count=1)


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `2h`, `1d` or `500ms`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90, 90s, 15m, 2h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


@dataclass(frozen=True, slots=True)
class Settings:
    queue_url: str | None = None
    dlq_url: str | None = None
    region: str | None = None
    store_url: str = DEFAULT_STORE
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    canvas_url: str | None = None
    canvas_token: Secret | None = field(default=None, repr=False)
    accounts: frozenset[str] = frozenset()
    pollers: int = 4
    wait_time_seconds: int = 20
    visibility_timeout: float = 60.0
    shutdown_grace: float = 25.0
    stall_after: float = 120.0
    gauge_interval: float = 5.0
    reconcile_after: float = 600.0
    reconcile_spacing: float = 1.0
    canvas_timeout: float = 60.0
    stuck_never_started: float = 1800.0
    stuck_running: float = 7200.0
    stuck_orphaned: float = 900.0
    stuck_silent: float = 300.0
    stuck_learn_after: int = 5
    stuck_learn_floor: float = 900.0
    stuck_learn_ceiling: float = 43200.0
    expect_success_every: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """Per account UUID: a successful import is expected at least this often (seconds)."""
    lease: float = 30.0
    journal_retention: float = 90 * 86400.0
    intake_queue_url: str | None = None
    intake_rules: tuple[IntakeRule, ...] = ()
    log_format: str = "json"
    log_level: str = "info"

    @property
    def sqlite_path(self) -> Path | None:
        if not self.store_url.startswith(SQLITE):
            return None
        return Path(self.store_url.removeprefix(SQLITE))

    @property
    def dynamodb_table(self) -> str | None:
        if not self.store_url.startswith(DYNAMODB):
            return None
        return self.store_url.removeprefix(DYNAMODB)

    @property
    def metrics_addr(self) -> str:
        return f"{self.metrics_host}:{self.metrics_port}"

    @property
    def stuck_thresholds(self) -> StuckThresholds:
        return StuckThresholds(
            never_started=self.stuck_never_started,
            running_too_long=self.stuck_running,
            orphaned=self.stuck_orphaned,
            silent=self.stuck_silent,
        )

    @property
    def learning(self) -> Learning:
        return Learning(
            after=self.stuck_learn_after, floor=self.stuck_learn_floor, ceiling=self.stuck_learn_ceiling
        )

    def require_queue(self) -> str:
        if not self.queue_url:
            raise ConfigError(f"{PREFIX}QUEUE_URL is required: the URL of the Canvas Live Events SQS queue")
        return self.queue_url

    def describe(self) -> dict[str, Any]:
        """The effective configuration for humans, secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = "******** (set)"
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif f.name == "intake_rules":
                value = [rule.describe() for rule in value]
            elif f.name.endswith("_url") and isinstance(value, str):
                value = masked_url(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        if self.canvas_token is None:
            out["canvas_token"] = NO_TOKEN_NOTE
        return out


_DURATIONS: Final = {
    "VISIBILITY_TIMEOUT": "visibility_timeout",
    "SHUTDOWN_GRACE": "shutdown_grace",
    "STALL_AFTER": "stall_after",
    "GAUGE_INTERVAL": "gauge_interval",
    "RECONCILE_AFTER": "reconcile_after",
    "RECONCILE_SPACING": "reconcile_spacing",
    "CANVAS_TIMEOUT": "canvas_timeout",
    "STUCK_NEVER_STARTED": "stuck_never_started",
    "STUCK_RUNNING": "stuck_running",
    "STUCK_ORPHANED": "stuck_orphaned",
    "STUCK_SILENT": "stuck_silent",
    "STUCK_LEARN_FLOOR": "stuck_learn_floor",
    "STUCK_LEARN_CEILING": "stuck_learn_ceiling",
    "LEASE": "lease",
    "JOURNAL_RETENTION": "journal_retention",
}


_FLOORS: Final = {
    "GAUGE_INTERVAL": ("gauge_interval", 0.1, "100ms"),
    "RECONCILE_AFTER": ("reconcile_after", 1.0, "1s"),
    "RECONCILE_SPACING": ("reconcile_spacing", 0.01, "10ms"),
    "CANVAS_TIMEOUT": ("canvas_timeout", 1.0, "1s"),
    "STUCK_NEVER_STARTED": ("stuck_never_started", 1.0, "1s"),
    "STUCK_RUNNING": ("stuck_running", 1.0, "1s"),
    "STUCK_ORPHANED": ("stuck_orphaned", 1.0, "1s"),
    "STUCK_SILENT": ("stuck_silent", 1.0, "1s"),
}
"""Durations a timer loop waits between two rounds (or on which a verdict flips): zero is a busy loop."""


def from_env(env: Mapping[str, str]) -> Settings:
    """Build and validate settings; every problem is reported at once, one per line."""
    problems: list[str] = []
    values: dict[str, Any] = {}

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name, "").strip()
        return value or None

    for name in ("QUEUE_URL", "DLQ_URL", "CANVAS_URL", "INTAKE_QUEUE_URL"):
        value = get(name)
        if value is not None:
            if value.startswith("arn:") and name != "CANVAS_URL":
                problems.append(
                    f"{PREFIX}{name}: {value!r} is the queue's ARN; the daemon needs its URL, "
                    "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (the stack's QueueUrl output)"
                )
            elif not value.startswith(("http://", "https://")):
                problems.append(f"{PREFIX}{name}: {value!r} is not an http(s) URL")
            elif name != "CANVAS_URL":
                problems.extend(_queue_problems(name, value))
            values[name.lower()] = value.rstrip("/") if name == "CANVAS_URL" else value

    values["region"] = (
        env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or _region_of(values.get("queue_url"))
    )

    store = get("STORE") or DEFAULT_STORE
    if store.startswith(DYNAMODB):
        if not _TABLE_NAME.match(store.removeprefix(DYNAMODB)):
            problems.append(
                f"{PREFIX}STORE: {store!r}: a table name is 3 to 255 letters, digits, '_', '-' or '.'"
            )
    elif not (store.startswith(SQLITE) and len(store) > len(SQLITE)):
        problems.append(f"{PREFIX}STORE: {store!r} is neither sqlite:///path nor dynamodb://table")
    values["store_url"] = store

    addr = get("METRICS_ADDR") or DEFAULT_METRICS_ADDR
    host, _, port = addr.rpartition(":")
    if not host or not port.isdecimal() or not 0 <= int(port) <= 65535:
        problems.append(f"{PREFIX}METRICS_ADDR: {addr!r} is not host:port")
    else:
        values["metrics_host"], values["metrics_port"] = host.strip("[]"), int(port)

    token = get("CANVAS_TOKEN")
    token_file = get("CANVAS_TOKEN_FILE")
    if token and token_file:
        problems.append(f"{PREFIX}CANVAS_TOKEN and {PREFIX}CANVAS_TOKEN_FILE are both set: keep one")
    elif token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{PREFIX}CANVAS_TOKEN_FILE: cannot read {token_file!r}: {exc.strerror}")
    if token:
        values["canvas_token"] = Secret(token)

    values["intake_rules"] = _intake_rules(get("INTAKE_RULES"), get("INTAKE_RULES_FILE"), problems)

    accounts = get("ACCOUNTS")
    if accounts:
        values["accounts"] = frozenset(a.strip() for a in accounts.split(",") if a.strip())
        problems.extend(
            f"{PREFIX}ACCOUNTS: {a!r} is not a root account UUID: Live Events carry the account's "
            "40-letter UUID, not its id (`sis-consumer check-config --probe` shows yours)"
            for a in sorted(values["accounts"])
            if not _ACCOUNT_UUID.match(a)
        )

    expectations = get("EXPECT_SUCCESS_EVERY")
    if expectations:
        values["expect_success_every"], found = _expectations(
            expectations, values.get("accounts", frozenset())
        )
        problems.extend(found)

    for name, attr, low, high in (
        ("POLLERS", "pollers", 1, 64),
        ("WAIT_TIME_SECONDS", "wait_time_seconds", 0, 20),
        ("STUCK_LEARN_AFTER", "stuck_learn_after", 0, HISTORY_SIZE),
    ):
        raw = get(name)
        if raw is None:
            continue
        if not raw.isdecimal() or not low <= int(raw) <= high:
            problems.append(f"{PREFIX}{name}: {raw!r} is not a whole number from {low} to {high}")
        else:
            values[attr] = int(raw)

    for name, attr in _DURATIONS.items():
        raw = get(name)
        if raw is None:
            continue
        try:
            values[attr] = parse_duration(raw)
        except ValueError as exc:
            problems.append(f"{PREFIX}{name}: {exc}")

    log_format = (get("LOG_FORMAT") or "json").lower()
    if log_format not in {"json", "console"}:
        problems.append(f"{PREFIX}LOG_FORMAT: {log_format!r} is not json or console")
    values["log_format"] = log_format
    log_level = (get("LOG_LEVEL") or "info").lower()
    if log_level not in {"debug", "info", "warning", "error"}:
        problems.append(f"{PREFIX}LOG_LEVEL: {log_level!r} is not debug, info, warning or error")
    values["log_level"] = log_level

    settings = Settings(**values)
    problems.extend(_cross_checks(settings))
    problems.extend(
        _intake_checks(settings, rules_given=bool(get("INTAKE_RULES") or get("INTAKE_RULES_FILE")))
    )
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


def _cross_checks(s: Settings) -> list[str]:
    problems = [
        f"{PREFIX}{name} must be at least {shown}"
        for name, (attr, floor, shown) in _FLOORS.items()
        if getattr(s, attr) < floor
    ]
    if not 1 <= s.visibility_timeout <= 43200:
        problems.append(f"{PREFIX}VISIBILITY_TIMEOUT must be between 1s and 12h (SQS's range)")
    if s.shutdown_grace < 1:
        problems.append(f"{PREFIX}SHUTDOWN_GRACE must be at least 1s")
    if s.stall_after <= s.wait_time_seconds + 10:
        problems.append(
            f"{PREFIX}STALL_AFTER ({s.stall_after:g}s) must exceed the long poll "
            f"({s.wait_time_seconds}s) by more than 10s, or /livez fails on a quiet queue"
        )
    if s.canvas_token is not None and not s.canvas_url:
        problems.append(f"{PREFIX}CANVAS_TOKEN is set but {PREFIX}CANVAS_URL is not")
    if s.queue_url and s.region is None:
        problems.append("AWS_REGION is not set and cannot be read from the queue URL")
    if s.dynamodb_table and s.region is None:
        problems.append(f"AWS_REGION is not set: the DynamoDB store of {PREFIX}STORE needs it")
    if s.stuck_learn_floor > s.stuck_learn_ceiling:
        problems.append(f"{PREFIX}STUCK_LEARN_FLOOR must not exceed {PREFIX}STUCK_LEARN_CEILING")
    if s.lease < 3:
        problems.append(f"{PREFIX}LEASE must be at least 3s (renewed every third of it)")
    if s.journal_retention < 86400:
        problems.append(f"{PREFIX}JOURNAL_RETENTION must be at least 1d")
    return problems


def _intake_checks(s: Settings, *, rules_given: bool) -> list[str]:
    problems = []
    if s.intake_queue_url and not rules_given:
        problems.append(
            f"{PREFIX}INTAKE_QUEUE_URL is set but no rules say what to submit: "
            f"set {PREFIX}INTAKE_RULES or {PREFIX}INTAKE_RULES_FILE"
        )
    if rules_given and not s.intake_queue_url:
        problems.append(
            f"{PREFIX}INTAKE_RULES: set, but {PREFIX}INTAKE_QUEUE_URL (the drop folder's queue) is not"
        )
    if s.intake_queue_url and (not s.canvas_url or s.canvas_token is None):
        problems.append(
            f"{PREFIX}INTAKE_QUEUE_URL: the drop folder submits imports, so it needs "
            f"{PREFIX}CANVAS_URL and {PREFIX}CANVAS_TOKEN (or _TOKEN_FILE)"
        )
    return problems


def _intake_rules(text: str | None, path: str | None, problems: list[str]) -> tuple[IntakeRule, ...]:
    """The drop folder's rules, as TOML in the variable or in a file (one of the two)."""
    name = f"{PREFIX}INTAKE_RULES"
    if text and path:
        problems.append(f"{name} and {name}_FILE are both set: keep one")
        return ()
    if path:
        name += "_FILE"
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{name}: cannot read {path!r}: {getattr(exc, 'strerror', None) or exc}")
            return ()
    if not text:
        return ()
    rules, found = load_rules(text)
    problems.extend(f"{name}: {p}" for p in found)
    return rules


def _queue_problems(name: str, url: str) -> list[str]:
    """A queue URL names a standard queue: `.../ACCOUNT/NAME`, NAME without `.fifo`."""
    queue = urlsplit(url).path.rstrip("/").rpartition("/")[2]
    if queue.endswith(".fifo"):
        return [f"{PREFIX}{name}: {queue} is a FIFO queue: {_WHY_STANDARD[name]}"]
    if not _QUEUE_NAME.match(queue):
        return [f"{PREFIX}{name}: {url!r} is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"]
    return []


def _expectations(text: str, accounts: frozenset[str]) -> tuple[Mapping[str, float], list[str]]:
    """`UUID=DURATION,...`; a bare `DURATION` applies to every account of SIS_CONSUMER_ACCOUNTS.
    An account outside the allowlist is an error: its imports are never watched."""
    name = f"{PREFIX}EXPECT_SUCCESS_EVERY"
    every: dict[str, float] = {}
    default: float | None = None
    problems = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        account, _, duration = entry.rpartition("=")
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            problems.append(f"{name}: {entry!r}: {exc}")
            continue
        if seconds <= 0:
            problems.append(f"{name}: {entry!r}: the interval must be longer than 0")
        elif not account:
            default = seconds
        elif accounts and account.strip() not in accounts:
            problems.append(f"{name}: account {account.strip()!r} is not in {PREFIX}ACCOUNTS")
        else:
            every[account.strip()] = seconds
    if default is not None:
        if not accounts:
            problems.append(
                f"{name}: a bare interval applies to every account of {PREFIX}ACCOUNTS, which is empty:"
                " name the account (UUID=26h)"
            )
        every = {account: default for account in accounts} | every
    return MappingProxyType(every), problems


def _region_of(queue_url: str | None) -> str | None:
    match = _QUEUE_REGION.match(queue_url or "")
    return match.group(1) if match else None
