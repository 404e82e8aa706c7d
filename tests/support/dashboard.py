"""Check the deploy/ artifacts against the daemon: PromQL parses, metric names exist, runbook anchors.

Used by tests/deploy/test_deploy.py; also runnable: `python -m tests.support.dashboard`.

- Every PromQL expression of the Grafana dashboard (panel targets and the `label_values` of the
  template variables) and of the alert rules must parse: promtool checks them, the dashboard's by
  way of a generated rules file with one recording rule per expression, after the Grafana template
  variables are replaced with concrete values.
- Every metric name they use (`canvas_sis_*`, `sis_consumer_*`) must be one the daemon exports,
  read from a fresh registry holding `consumer.observability.metrics.Metrics`, not from a list.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.observability.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "sis-consumer.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RUNBOOK = DEPLOY / "RUNBOOK.md"
CLOUDFORMATION = DEPLOY / "cloudformation.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"

INSTALL_HINT = {
    "promtool": "apt-get install prometheus (Debian/Ubuntu; .ci/run does it)",
    "amtool": "apt-get install prometheus-alertmanager (Debian/Ubuntu; .ci/run does it)",
    "cfn-lint": "pip install -e '.[dev]' (cfn-lint is in the dev extra) or pip install cfn-lint",
}

# Concrete values for Grafana's template variables, so that the expression is plain PromQL.
TEMPLATE_VALUES: Mapping[str, str] = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__interval_ms": "60000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "account": ".*",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
_METRIC = re.compile(r"(?<![\w:])(?:canvas_sis|sis_consumer)_\w+")
_SUFFIXES = ("_bucket", "_count", "_sum")
_SAMPLED = frozenset({"histogram", "summary"})
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*\w+\s*\)\s*$")


class ToolMissing(AssertionError):
    """A command-line tool the deploy checks need is not installed."""


def tool(name: str) -> str:
    """Path of a command-line tool (the virtualenv's own bin first), or a failure saying how to install."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        raise ToolMissing(f"`{name}` is not installed; install it with: {INSTALL_HINT.get(name, name)}")
    return found


def run(args: list[str], *, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def load_yaml(path: Path) -> Any:
    # Imported by name: PyYAML (a dependency of cfn-lint) ships no type stubs.
    yaml = importlib.import_module("yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ exported metric names
def exported_metrics(registry: CollectorRegistry | None = None) -> dict[str, str]:
    """Every metric name the daemon exports, with its type, read from a registry holding `Metrics`.

    Counters are listed with their `_total` suffix (prometheus_client appends it), histograms by
    their family name: their series are that name plus `_bucket`/`_count`/`_sum`.
    """
    registry = registry or CollectorRegistry()
    Metrics(registry)
    names: dict[str, str] = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        names[name] = family.type
    return names


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def unknown_metrics(exprs: Iterable[str], exported: Mapping[str, str]) -> list[str]:
    """Names used in `exprs` that the daemon does not export (with the reason).

    `_bucket`/`_count`/`_sum` are stripped from histogram (and summary) series only; a histogram's
    bare family name is reported, since Prometheus has no series of that name.
    """
    problems = []
    for expr in exprs:
        for name in sorted(metric_names(expr)):
            kind = exported.get(name)
            stripped = [
                name.removesuffix(suffix)
                for suffix in _SUFFIXES
                if name.endswith(suffix) and exported.get(name.removesuffix(suffix)) in _SAMPLED
            ]
            if kind in _SAMPLED:
                problems.append(f"{name}: a {kind} has no bare series (use _bucket/_count/_sum)")
            elif kind is None and not stripped:
                problems.append(f"{name}: not exported by consumer.observability.metrics (in {expr!r})")
    return problems


# ------------------------------------------------------------------ dashboard
def substitute(expr: str, values: Mapping[str, str] = TEMPLATE_VALUES) -> str:
    """Replace Grafana template variables ($x, ${x}, ${x:fmt}, [[x]]) with concrete values."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


@dataclass(frozen=True)
class Expr:
    where: str
    expr: str


def _panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def dashboard_panels(dashboard: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(_panels(dashboard.get("panels", [])))


def dashboard_exprs(dashboard: Mapping[str, Any]) -> list[Expr]:
    """Every PromQL expression of the dashboard, template variables substituted."""
    found = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = f"panel {panel.get('id')} {panel.get('title')!r} target {target.get('refId')}"
                found.append(Expr(where, substitute(target["expr"])))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, Mapping) else str(query or "")
        match = _LABEL_VALUES.match(text)
        found.append(Expr(f"variable ${variable['name']}", substitute(match.group(1) if match else text)))
    return found


def recording_rules(exprs: Iterable[Expr]) -> str:
    """A Prometheus rules file (JSON is YAML) with one recording rule per expression."""
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": e.expr, "labels": {"where": e.where}}
        for i, e in enumerate(exprs)
    ]
    return json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=2)


def promtool_check_exprs(exprs: list[Expr]) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on a temporary file wrapping every expression as a recording rule."""
    promtool = tool("promtool")
    with tempfile.TemporaryDirectory(prefix="dashboard-rules-") as tmp:
        rules = Path(tmp) / "dashboard.rules.yaml"
        rules.write_text(recording_rules(exprs), encoding="utf-8")
        return run([promtool, "check", "rules", str(rules)])


# ------------------------------------------------------------------ alert rules and runbook
def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    data = load_yaml(path)
    return [rule for group in data["groups"] for rule in group["rules"] if "alert" in rule]


def alert_exprs(path: Path = ALERTS) -> list[Expr]:
    return [Expr(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules(path)]


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors(path: Path = RUNBOOK) -> set[str]:
    text = path.read_text(encoding="utf-8")
    anchors = {github_anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.M)}
    anchors |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return anchors


def runbook_problems(path: Path = ALERTS, runbook: Path = RUNBOOK) -> list[str]:
    """Every alert has a runbook_url with one shared base and an anchor that exists."""
    anchors = runbook_anchors(runbook)
    problems, bases = [], set()
    for rule in alert_rules(path):
        url = rule.get("annotations", {}).get("runbook_url", "")
        base, _, anchor = url.partition("#")
        if not base.endswith("deploy/RUNBOOK.md") or not anchor:
            problems.append(f"{rule['alert']}: runbook_url {url!r} is not <base>/deploy/RUNBOOK.md#<anchor>")
            continue
        bases.add(base)
        if anchor not in anchors:
            problems.append(f"{rule['alert']}: anchor #{anchor} is not a heading of {runbook.name}")
    if len(bases) > 1:
        problems.append(f"runbook_url bases differ (keep one): {sorted(bases)}")
    return problems


# ------------------------------------------------------------------ all of it
def problems() -> list[str]:
    found: list[str] = []
    exported = exported_metrics()
    exprs = dashboard_exprs(load_dashboard())
    checked = promtool_check_exprs(exprs)
    if checked.returncode != 0:
        found.append("dashboard PromQL does not parse:\n" + checked.stdout + checked.stderr)
    alerts = run([tool("promtool"), "check", "rules", str(ALERTS)])
    if alerts.returncode != 0:
        found.append("alert rules do not parse:\n" + alerts.stdout + alerts.stderr)
    found += [f"dashboard: {p}" for p in unknown_metrics((e.expr for e in exprs), exported)]
    found += [f"alerts: {p}" for p in unknown_metrics((e.expr for e in alert_exprs()), exported)]
    found += runbook_problems()
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem)
    print("ok" if not found else f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
