"""Two builds' server CPU compared fairly: `bench/load.py` against each, both at the same time, several times.

On a shared machine the speed of a core drifts by a third within minutes, so two builds measured one after the
other differ by more than most changes do. Run at the same time, pinned to the same core, both servers see the
same speed, and the ratio of their CPU for the same calls is steady (three pairs: 0.908, 0.907, 0.884). Each
server gets its own load generator process, with the same calls and seed, pinned together to another core.

Run it from the repository root in the project's environment, with the other build checked out elsewhere
(`git worktree add /tmp/before <commit>`)::

    python bench/load_pair.py --before /tmp/before --pairs 3
    python bench/load_pair.py --before /tmp/before --after . --server-cpus 0 --client-cpus 1 --calls 50

Options it does not know go to both `bench/load.py` runs (`--calls`, `--turns`, `--ramp`, ...).

Each pair prints both runs' server CPU per inbound frame, and the after/before ratio of their server CPU.
The ratio is the figure to compare builds by; the µs per frame of a pair are inflated, as two servers and two
load generators share the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
LOAD = REPO_ROOT / "bench" / "load.py"
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "load_pair.json"


def load_command(root: str, args: argparse.Namespace, out: Path, load_args: Sequence[str]) -> list[str]:
    """`bench/load.py` against one build, pinned as asked."""
    command = [sys.executable, str(LOAD), *load_args, "--server-root", root, "--json", str(out)]
    if args.server_cpus:
        command += ["--server-cpus", args.server_cpus]
    if args.client_cpus:
        command = ["taskset", "-c", args.client_cpus, *command]
    return command


def one_pair(args: argparse.Namespace, load_args: Sequence[str], scratch: Path, index: int) -> dict[str, Any]:
    """Both builds at once; the point of each, and the after/before ratio of server CPU."""
    outs = {side: scratch / f"{side}-{index}.json" for side in ("before", "after")}
    commands = {side: load_command(getattr(args, side), args, outs[side], load_args) for side in outs}
    runs = {side: subprocess.Popen(command, stdout=subprocess.DEVNULL) for side, command in commands.items()}
    codes = {side: run.wait() for side, run in runs.items()}
    points = {side: json.loads(outs[side].read_text())["points"][0] for side in ("before", "after")}
    before, after = points["before"], points["after"]
    return {
        "exit_codes": codes,
        "before": before,
        "after": after,
        "cpu_ratio": round(after["server_cpu_s"] / before["server_cpu_s"], 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the checkout of the build to compare against")
    parser.add_argument("--after", default=str(REPO_ROOT), help="the checkout of the build measured (this one)")
    parser.add_argument("--pairs", type=int, default=3, help="pairs of runs, one after the other")
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list for both servers")
    parser.add_argument("--client-cpus", default="1", help="taskset CPU list for both load generators")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help="where the results go")
    args, load_args = parser.parse_known_args(argv)
    pairs = []
    with tempfile.TemporaryDirectory(prefix="handoff-load-pair-") as scratch:
        for index in range(args.pairs):
            pair = one_pair(args, load_args, Path(scratch), index)
            pairs.append(pair)
            before, after = pair["before"], pair["after"]
            print(
                f"pair {index + 1}: before {before['server_us_per_inbound_frame']} µs/frame "
                f"({before['lost_calls']} lost), after {after['server_us_per_inbound_frame']} µs/frame "
                f"({after['lost_calls']} lost); server CPU after/before {pair['cpu_ratio']}"
            )
    ratios = [pair["cpu_ratio"] for pair in pairs]
    print(f"server CPU after/before: median {statistics.median(ratios)} of {ratios}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"before": args.before, "after": args.after, "pairs": pairs}, indent=2))
    print(f"results: {out}")
    failed = any(code for pair in pairs for code in pair["exit_codes"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
