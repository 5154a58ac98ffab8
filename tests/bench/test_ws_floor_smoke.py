"""The websocket floor benchmark still measures its layers, and the server's batched reads still batch: a few
connections for a second (nothing about speed is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.load import free_port
from bench.ws_floor import main


def test_the_batched_layer_reads_several_messages_a_read_where_the_direct_one_reads_each(tmp_path: Path) -> None:
    out = tmp_path / "floor.json"
    code = main(["--calls", "4", "--seconds", "1", "--warmup", "1", "--layers", "direct,batched",
                 "--port", str(free_port()), "--json", str(out)])  # fmt: skip
    assert code == 0
    layers = json.loads(out.read_text())["layers"]
    assert set(layers) == {"direct", "batched"}
    assert all(figures["us_per_message"] > 0 for figures in layers.values())
    direct, batched = layers["direct"]["messages_per_read"], layers["batched"]["messages_per_read"]
    assert batched >= 4  # the server's default batch gathers several messages a read
    assert batched >= 2 * direct  # where the direct layer reads each as it comes (a slow machine may join a few)
