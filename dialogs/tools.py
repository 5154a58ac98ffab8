"""Tools a bot pack may call, behind one protocol: the dialog asks (`CallTool`), the call session runs the tool
off the event loop and hands back a `ToolResult`.

A pack names its toolbox (`toolbox: "package.module:Class"`); the server loads it at start-up and checks that
every tool the pack names is there, so a pack with a typo fails before the first call, not during one.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from dialogs.errors import BotPackError

Data = dict[str, Any]


class ToolBox(Protocol):
    """Runs a named tool; returns (ok, data). ok False means the tool itself failed."""

    @property
    def names(self) -> frozenset[str]:
        """The tools this box can run."""
        ...

    def run(self, tool: str, arguments: Mapping[str, object]) -> tuple[bool, Data]: ...


class NoTools:
    """The toolbox of a pack without tools: every request is a failure naming the tool."""

    names: frozenset[str] = frozenset()

    def run(self, tool: str, arguments: Mapping[str, object]) -> tuple[bool, Data]:
        return False, {"error": f"no tool named {tool!r}"}


def load_toolbox(spec: str | None, pack_file: str, needed: set[str]) -> ToolBox:
    """The toolbox `spec` ("package.module:Class") names, with every tool in `needed`; BotPackError otherwise."""
    if spec is None:
        box: ToolBox = NoTools()
    else:
        module_name, _, class_name = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise BotPackError(pack_file, "toolbox", f"cannot load {spec!r}: {exc}") from exc
        box = factory()
    missing = sorted(needed - box.names)
    if missing:
        raise BotPackError(pack_file, "tools", f"the toolbox has no {', '.join(missing)}")
    return box
