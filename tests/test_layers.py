"""Dependencies point inward: `dialogs/` imports neither `telephony/` nor `voice/`, and `voice/` does not
import `telephony/`. Checked on the source with `ast`, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"dialogs": {"telephony", "voice"}, "voice": {"telephony"}}


def imported_packages(path: Path, package: str) -> set[str]:
    """The top-level package of every import in a file; relative imports resolve against its own package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = [package, *path.relative_to(ROOT / package).parent.parts]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add((node.module or "").split(".")[0])
            else:
                base = here[: len(here) - (node.level - 1)]
                parts = [*base, *(node.module.split(".") if node.module else [])]
                if parts:
                    found.add(parts[0])
                else:  # `from .. import x` from the top of a package reaches a sibling package by name
                    found.update(alias.name for alias in node.names)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_the_package_has_sources_to_check(package: str) -> None:
    assert len(sources(package)) >= 3


@pytest.mark.parametrize(
    ("package", "path"),
    [(package, path) for package in sorted(FORBIDDEN) for path in sources(package)],
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_dependencies_point_inward(package: str, path: Path) -> None:
    assert not imported_packages(path, package) & FORBIDDEN[package]


def test_the_checker_sees_forbidden_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    module = tmp_path / "voice" / "sub" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "import os\nfrom telephony.protocol import X\n"
        "def f():\n    import telephony.rest\n"
        "from ..codec import y\nfrom ... import dialogs\n",
        encoding="utf-8",
    )
    assert imported_packages(module, "voice") == {"os", "telephony", "voice", "dialogs"}
