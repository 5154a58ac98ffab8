"""A benchmark measures the checkout it lives in, not whichever checkout is installed in the environment.

Comparing two builds means running each checkout's `bench/` script; with the project installed in editable
mode, a script that imports the project without putting its own checkout first would time the installed one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("telephony", "voice", "dialogs")
PROBE = (
    "import runpy, sys; runpy.run_path(sys.argv[1], run_name='probe'); "
    f"print('\\n'.join(sys.modules[p].__file__ for p in {PACKAGES!r} if p in sys.modules))"
)
PROJECT_IMPORT = re.compile(rf"^(from|import) ({'|'.join(PACKAGES)})\b", re.MULTILINE)
SCRIPTS = sorted(p.name for p in (REPO_ROOT / "bench").glob("*.py") if PROJECT_IMPORT.search(p.read_text()))


def test_the_scripts_that_import_the_project_are_found() -> None:
    assert {"media_path.py", "turn_latency.py", "load.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_bench_script_imports_the_project_from_its_own_checkout(script: str, tmp_path: Path) -> None:
    other = tmp_path / "other-checkout"
    shutil.copytree(REPO_ROOT / "bench", other / "bench", ignore=shutil.ignore_patterns("results", "__pycache__"))
    for folder in (*PACKAGES, "tests", "audio_fixtures"):  # the same code at another path: __file__ says which
        (other / folder).symlink_to(REPO_ROOT / folder, target_is_directory=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(other / "bench" / script)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert probe.returncode == 0, probe.stderr[-2000:]
    imported = [Path(line) for line in probe.stdout.split()]
    assert imported, "the script imported none of the project's packages"
    assert all(path.is_relative_to(other) for path in imported), imported
