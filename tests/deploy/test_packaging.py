"""Installing sis-consumer the way `make` does prints no build warnings (they used to fill the
screen before the demo's banner)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _makefile_warning_filter() -> str:
    found = re.search(r'PYTHONWARNINGS="([^"]+)"', (ROOT / "Makefile").read_text(encoding="utf-8"))
    assert found, "the Makefile's editable install no longer sets PYTHONWARNINGS"
    return found.group(1)


def test_the_makefiles_editable_install_prints_no_build_warnings(tmp_path: Path) -> None:
    """pip install -e (as the Makefile runs it) shows none of setuptools' warnings: no deprecated
    license table, no "Editable installation" notice."""
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    env = {**os.environ, "PYTHONWARNINGS": _makefile_warning_filter()}
    pip = [sys.executable, "-m", "pip", "--python", str(target / "bin" / "python")]
    done = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--disable-pip-version-check", "-e", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "Warning" in line]
    assert warnings == []
