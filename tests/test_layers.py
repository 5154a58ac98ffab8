"""Dependencies point inward, and each folder holds one job.

- `dialogs/` imports neither `telephony/` nor `voice/`; `voice/` does not import `telephony/`.
- Inside `telephony/`: `twilio` imports nothing else from `telephony` (only the layer's base error at its root);
  `calls` never reaches the desk, the store, the server or the replays; the store knows only call records;
  the desk never reaches the server; the server never imports the replay harness.
- Nothing but `__init__.py` and `cli.py` sits at the `telephony/` root.

Checked on the source with `ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"dialogs": {"telephony", "voice"}, "voice": {"telephony"}}
ROOMS = ("twilio", "calls", "desk", "store", "server", "replay")
# The rooms of `telephony` each may import; `cli.py` on top may import them all.
ALLOWED_ROOMS = {
    "twilio": set(),
    "calls": {"twilio"},
    "store": {"calls"},
    "desk": {"twilio", "calls", "store"},
    "server": {"twilio", "calls", "store", "desk"},
    "replay": {"twilio", "calls", "store", "desk", "server"},
}


def imported_modules(path: Path, package: str) -> set[str]:
    """The dotted name of every module a file imports; relative imports resolve against its own package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = [package, *path.relative_to(ROOT / package).parent.parts]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = (node.module or "").split(".")
            else:
                base = here[: len(here) - (node.level - 1)] + (node.module.split(".") if node.module else [])
            if not node.module:  # `from pkg import sub`: the names may be modules
                found.update(".".join([*base, alias.name]) for alias in node.names)
            found.add(".".join(base))
    return {name for name in found if name}


def imported_packages(path: Path, package: str) -> set[str]:
    """The top-level package of every import in a file."""
    return {name.split(".")[0] for name in imported_modules(path, package)}


def rooms_imported(path: Path) -> set[str]:
    """The `telephony` rooms a file imports (the root itself is not a room)."""
    rooms = set()
    for name in imported_modules(path, "telephony"):
        parts = name.split(".")
        if parts[0] == "telephony" and len(parts) > 1 and parts[1] in ROOMS:
            rooms.add(parts[1])
    return rooms


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


@pytest.mark.parametrize(
    ("room", "path"),
    [(room, path) for room in ROOMS for path in sorted((ROOT / "telephony" / room).rglob("*.py"))],
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else value,
)
def test_each_telephony_room_imports_only_the_rooms_inside_it(room: str, path: Path) -> None:
    outside = rooms_imported(path) - ALLOWED_ROOMS[room] - {room}
    assert not outside, f"{path.relative_to(ROOT)} imports telephony.{', telephony.'.join(sorted(outside))}"


def test_every_room_exists_and_the_telephony_root_holds_only_its_entry_points() -> None:
    assert all((ROOT / "telephony" / room / "__init__.py").is_file() for room in ROOMS)
    at_root = sorted(p.name for p in (ROOT / "telephony").glob("*.py"))
    assert at_root == ["__init__.py", "cli.py"]


def test_the_checker_sees_forbidden_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    module = tmp_path / "voice" / "sub" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "import os\nfrom telephony.twilio.protocol import X\n"
        "def f():\n    import telephony.twilio.rest\n"
        "from ..codec import y\nfrom ... import dialogs\n",
        encoding="utf-8",
    )
    assert imported_packages(module, "voice") == {"os", "telephony", "voice", "dialogs"}


def test_the_checker_sees_a_room_reaching_outward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    module = tmp_path / "telephony" / "calls" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text(
        "from telephony.twilio.protocol import X\nfrom telephony import TelephonyError\n"
        "def f():\n    from ..desk import transfers\n    from telephony.server import app\n",
        encoding="utf-8",
    )
    assert rooms_imported(module) == {"twilio", "desk", "server"}
