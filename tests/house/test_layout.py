"""The layout rules docs/architecture.md states, checked on the source: which module may import
which, the tests' own rule (docs/testing.md, "Shared test support"), references that resolve, and
the module size."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSUMER = ROOT / "consumer"
DAEMON = CONSUMER / "daemon"
LOOPS = tuple(p.stem for p in sorted(DAEMON.glob("*.py")) if p.stem not in ("__init__", "app"))
"""The daemon's loops: everything in `consumer/daemon` but the wiring (`app`)."""
ADAPTER_FAMILIES = ("sqlite", "dynamodb", "sqs", "canvas", "s3")
LONGEST = 440
"""Lines; the longest modules were ~430 when the house was reviewed."""
IMPURE = frozenset({"asyncio", "sqlite3", "socket", "subprocess", "threading", "os", "pathlib", "time"})


def imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            yield node.module
            # `from consumer.adapters import sqlite_writes as sw` imports the submodule
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def family(module: str) -> str | None:
    """`consumer.adapters.sqlite_writes[.name]` -> `sqlite`; `store_dynamodb` -> `dynamodb`."""
    parts = module.split(".")
    name = parts[2] if len(parts) > 2 else ""
    return next((f for f in ADAPTER_FAMILIES if f in name.split("_")), None)


def test_the_core_imports_only_the_core_the_standard_library_and_msgspec() -> None:
    wrong = {
        (module_name(path), imported)
        for path in sources(CONSUMER / "core")
        for imported in imports(path)
        if not imported.startswith("consumer.core")
        and imported.split(".")[0] not in {"msgspec", "__future__"}
        and (imported.split(".")[0] not in sys.stdlib_module_names or imported.split(".")[0] in IMPURE)
    }

    assert wrong == set()


def test_the_loops_know_the_ports_and_never_an_adapter() -> None:
    wrong = {
        (loop, imported)
        for loop in LOOPS
        for imported in imports(DAEMON / f"{loop}.py")
        if imported.startswith("consumer.adapters")
    }

    assert wrong == set()


def test_an_adapter_imports_no_loop_and_no_other_outside_system() -> None:
    wrong = set()
    for path in sources(CONSUMER / "adapters"):
        own = family(module_name(path))
        for imported in imports(path):
            if imported.startswith(("consumer.daemon", "consumer.commands")) or imported in (
                "consumer.cli",
                "consumer.stores",
                "consumer.submitting",
            ):
                wrong.add((module_name(path), imported))
            if imported.startswith("consumer.adapters.") and family(imported) != own:
                wrong.add((module_name(path), imported))

    assert wrong == set()


def test_worker_handler_and_sqs_adapter_do_not_import_one_another() -> None:
    trio = ("consumer.daemon.worker", "consumer.daemon.handler", "consumer.adapters.sqs")
    wrong = {
        (module, imported)
        for module in trio
        for imported in imports(ROOT / (module.replace(".", "/") + ".py"))
        if imported in trio
    }

    assert wrong == set()


def test_a_test_imports_only_its_own_package_and_tests_support() -> None:
    wrong = set()
    for path in sources(ROOT / "tests"):
        package = ".".join(path.relative_to(ROOT).parts[:2])  # tests.<folder>
        for imported in imports(path):
            if not imported.startswith("tests."):
                continue
            leaf = imported.rsplit(".", 1)[-1]
            foreign = not (
                imported.startswith("tests.support")
                or imported == package
                or imported.startswith(package + ".")
            )
            if foreign or leaf == "conftest" or leaf.startswith("test_"):
                wrong.add((module_name(path), imported))

    assert wrong == set()


def test_no_code_or_test_points_at_a_document_the_repository_does_not_hold() -> None:
    missing = ("DESIGN" + ".md", "CANVAS" + ".md")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in (CONSUMER, ROOT / "tests")
        for path in sources(folder)
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(name in line for name in missing)
    ]

    assert found == []


def test_no_module_of_the_daemon_grows_past_the_reviewed_size() -> None:
    long = {
        module_name(path): length
        for path in sources(CONSUMER)
        if (length := len(path.read_text().splitlines())) > LONGEST
    }

    assert long == {}
