"""No `assert` on a runtime path: `python -O` strips them, and a failed one strands whatever it was guarding."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("voice", "telephony", "dialogs")


def test_no_package_module_uses_assert() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert not found, f"asserts on runtime paths (raise a named error, or handle the case): {found}"
