"""The websocket floor benchmark still measures its layers, and the server's batched reads still batch: a few
connections for two seconds (nothing about speed is asserted)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from bench.ws_floor import main


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_batched_layer_reads_several_messages_a_read_where_the_direct_one_reads_each(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    code = main(["--calls", "4", "--seconds", "2", "--layers", "direct,batched", "--port", str(free_port()),
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    layers = json.loads(out.read_text())["layers"]
    assert set(layers) == {"direct", "batched"}
    assert all(figures["us_per_message"] > 0 for figures in layers.values())
    assert layers["direct"]["messages_per_read"] < 1.5  # each message read as it comes
    assert layers["batched"]["messages_per_read"] >= 4  # the server's default batch gathers several a read
