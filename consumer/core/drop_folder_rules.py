"""The drop folder's rules: which key prefix is submitted to which account, with which options.

A small TOML document (`SIS_CONSUMER_INTAKE_RULES[_FILE]`):

    max_size = "100MiB"              # for every rule that does not say

    [[rules]]
    prefix = "nightly/"
    account = "self"                 # the root account: "self" or its id
    [rules.options]                  # the SIS Imports API's create parameters
    batch_mode = true
    batch_mode_term_id = "sis_term_id:2026FA"
    change_threshold = 10

An unattended nightly batch-mode import of a truncated file can delete a term's enrollments, so a
rule with batch mode and no `change_threshold` (or diffing with no `diff_row_count_threshold`) is
refused unless it says `allow_unsafe = true`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from consumer.core.submission import ImportOptions

DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
_UNITS: Final = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*$")
_RULE_KEYS: Final = frozenset({"prefix", "account", "max_size", "allow_unsafe", "options"})
_OPTION_TYPES: Final = {f.name: str(f.type) for f in fields(ImportOptions) if f.name != "extension"}


@dataclass(frozen=True, slots=True)
class IntakeRule:
    prefix: str
    options: ImportOptions = field(default_factory=ImportOptions)
    account: str = "self"
    max_bytes: int = DEFAULT_MAX_BYTES
    allow_unsafe: bool = False

    def describe(self) -> dict[str, Any]:
        """For `check-config`."""
        return {
            "prefix": self.prefix,
            "account": self.account,
            "max_bytes": self.max_bytes,
            "allow_unsafe": self.allow_unsafe,
            "options": self.options.params(),
        }


def match(rules: Sequence[IntakeRule], key: str) -> IntakeRule | None:
    """The rule of the longest prefix `key` starts with."""
    found = [r for r in rules if key.startswith(r.prefix)]
    return max(found, key=lambda r: len(r.prefix), default=None)


def load_rules(text: str) -> tuple[tuple[IntakeRule, ...], list[str]]:
    """The rules a TOML document describes, and every problem with it (then no rules)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return (), [f"not valid TOML: {exc}"]
    problems = [f"unknown setting {k!r}" for k in document if k not in {"max_size", "rules"}]
    default_size = _size(document.get("max_size", DEFAULT_MAX_BYTES), "max_size", problems)
    raw_rules = document.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        return (), [*problems, "no [[rules]]: each needs at least a prefix"]
    rules = []
    for i, raw in enumerate(raw_rules, start=1):
        rule = _rule(raw, default_size, f"rule {i}", problems)
        if rule is not None:
            rules.append(rule)
    prefixes = [r.prefix for r in rules]
    problems += [
        f"prefix {p!r} has more than one rule" for p in sorted(set(prefixes)) if prefixes.count(p) > 1
    ]
    return (tuple(rules), []) if not problems else ((), problems)


def unsafe(options: ImportOptions) -> list[str]:
    """What makes these options dangerous to run unattended (each a sentence with its fix)."""
    found = []
    if options.batch_mode and options.change_threshold is None:
        found.append(
            "batch_mode without change_threshold: a truncated file would delete everything it "
            "leaves out of the term; set change_threshold (a percentage, e.g. 10)"
        )
    if options.diffing_data_set_identifier and options.diff_row_count_threshold is None:
        found.append(
            "diffing without diff_row_count_threshold: a truncated file would be diffed into "
            "deletions; set diff_row_count_threshold"
        )
    return found


def _rule(raw: object, default_size: int, where: str, problems: list[str]) -> IntakeRule | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: not a table")
        return None
    before = len(problems)
    prefix = raw.get("prefix")
    if not isinstance(prefix, str) or not prefix.strip("/"):
        problems.append(f"{where}: prefix must be a non-empty key prefix such as 'nightly/'")
        return None
    where = f"rule {prefix!r}"
    problems += [f"{where}: unknown setting {k!r}" for k in raw if k not in _RULE_KEYS]
    account = raw.get("account", "self")
    if not isinstance(account, str | int) or isinstance(account, bool) or not str(account):
        problems.append(f"{where}: account must be 'self' or the root account's id")
    allow_unsafe = raw.get("allow_unsafe", False)
    if not isinstance(allow_unsafe, bool):
        problems.append(f"{where}: allow_unsafe must be true or false")
    max_bytes = _size(raw.get("max_size", default_size), f"{where}: max_size", problems)
    options = _options(raw.get("options", {}), where, problems)
    if options is not None:
        problems += _refused(options, where, allow_unsafe is True)
    if len(problems) > before or options is None:
        return None
    return IntakeRule(prefix, options, str(account), max_bytes, allow_unsafe)


def refused_by_canvas(options: ImportOptions) -> list[str]:
    """What Canvas would answer with a 400: no flag makes these work."""
    if options.multi_term_batch_mode and options.change_threshold is None:
        # ...and Canvas saves the batch before it refuses: an orphaned `initializing`.
        return ["multi_term_batch_mode needs change_threshold (Canvas requires it)"]
    if options.batch_mode and not options.multi_term_batch_mode and options.batch_mode_term_id is None:
        return ["batch_mode needs batch_mode_term_id (or multi_term_batch_mode)"]
    return []


def _refused(options: ImportOptions, where: str, allow_unsafe: bool) -> list[str]:
    found = [f"{where}: {reason}" for reason in refused_by_canvas(options)]
    if not allow_unsafe:
        found += [
            f"{where}: refused: {reason} (or, knowing the risk, allow_unsafe = true)"
            for reason in unsafe(options)
        ]
    return found


def _options(raw: object, where: str, problems: list[str]) -> ImportOptions | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: options must be a table")
        return None
    values: dict[str, Any] = {}
    for name, value in raw.items():
        kind = _OPTION_TYPES.get(name)
        if kind is None:
            why = "taken from the file's bytes" if name == "extension" else "not a Canvas import option"
            problems.append(f"{where}: options.{name}: {why}")
        elif kind == "bool":
            if isinstance(value, bool):
                values[name] = value
            else:
                problems.append(f"{where}: options.{name} must be true or false")
        elif "int" in kind:
            low = 1
            high = 100 if name == "change_threshold" else None
            if isinstance(value, int) and not isinstance(value, bool) and low <= value <= (high or value):
                values[name] = value
            else:
                span = f"from {low} to {high}" if high else f"of at least {low}"
                problems.append(f"{where}: options.{name} must be a whole number {span}")
        elif isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            values[name] = str(value)
        else:
            problems.append(f"{where}: options.{name} must be a string")
    return ImportOptions(**values)


def _size(raw: object, where: str, problems: list[str]) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
        return raw
    match_ = _SIZE.match(raw) if isinstance(raw, str) else None
    if match_ is None or int(match_.group(1)) == 0:
        problems.append(f"{where}: {raw!r} is not a size (bytes, or e.g. '100MiB', '1GiB')")
        return DEFAULT_MAX_BYTES
    return int(match_.group(1)) * _UNITS[match_.group(2) or "B"]
