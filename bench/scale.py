"""Calls carried by 1, 2 and 4 `handoff serve` processes on one PostgreSQL database behind nginx (issue 14).

Each point starts P instances (oracle ASR: everything but speech recognition; `bench/asr_capacity.py`
measures that) on a throwaway PostgreSQL cluster (tests/postgres.py) or `--database-url`, puts Debian's nginx
in front with `deploy/nginx/handoff.conf` (tests/cluster/harness.py renders it for loopback), and plays
`bench/load.py`'s callers through nginx at each size of the ladder. A size is carried when no call is lost
and the reply latency seen by the callers stays within the target at p95. The load generator shares the machine
with the servers; its CPU is reported, as is every server process's.

    python bench/scale.py                                   # 1, 2, 4 processes; 100, 200, 300 calls
    python bench/scale.py --processes 1,2 --calls 150,300 --json /tmp/scale.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.load import ServerProcess, cpu_seconds, environment, run_point  # noqa: E402
from telephony.store import Store  # noqa: E402
from tests.cluster.harness import Nginx, find_nginx  # noqa: E402
from tests.postgres import reset_postgres, throwaway_postgres  # noqa: E402

TARGET_P95_MS = 100.0


@contextlib.contextmanager
def database(explicit: str | None) -> Iterator[str]:
    if explicit:
        yield explicit
        return
    with throwaway_postgres() as url:
        yield url


async def one_size(url: str, processes: int, ladder: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """P instances behind nginx: each ladder size in turn, until one is not carried."""
    reset_postgres(url)
    store = Store(url)
    store.migrate()
    store.close()
    nginx_binary = find_nginx()
    if nginx_binary is None:
        raise SystemExit("no nginx here: install Debian's nginx (`bash scripts/bootstrap.sh test` does)")
    work = Path(tempfile.mkdtemp(prefix=f"handoff-scale-{processes}-"))
    tts_dir = Path(args.tts_cache)
    servers = []
    for n in range(processes):
        scratch = work / f"i{n}"
        scratch.mkdir(parents=True)
        servers.append(ServerProcess(scratch, tts_dir, None, REPO_ROOT, {"HANDOFF_DATABASE_URL": url}))
    nginx: Nginx | None = None
    points = []
    try:
        for server in servers:
            await server.wait_up()
        nginx = Nginx(nginx_binary, work, [f"127.0.0.1:{s.port}" for s in servers])
        await run_point(nginx.base, servers[0].process.pid, 1, 0.0, args.turns, args.seed)  # prompts cached
        for calls in ladder:
            before = [cpu_seconds(s.process.pid) for s in servers]
            started = time.perf_counter()
            point = await run_point(nginx.base, servers[0].process.pid, calls, args.ramp, args.turns, args.seed)
            wall = time.perf_counter() - started
            used = [cpu_seconds(s.process.pid) - b for s, b in zip(servers, before, strict=True)]
            p95 = point["reply_ms_client"]["p95"]
            carried = point["lost_calls"] == 0 and p95 is not None and p95 <= TARGET_P95_MS
            summary = {
                "processes": processes, "calls": calls, "carried": carried, "lost_calls": point["lost_calls"],
                "reply_ms_client": point["reply_ms_client"], "greeting_ms": point["greeting_ms"],
                "server_cores_busy": round(sum(used) / wall, 2),
                "per_process_cores": [round(u / wall, 2) for u in used],
                "load_generator_cpu_s": point["load_generator_cpu_s"],
            }  # fmt: skip
            print(
                f"{processes} process(es) {calls:>4} calls: {'carried' if carried else 'NOT carried'}  lost "
                f"{point['lost_calls']}  reply p50 {point['reply_ms_client']['p50']} p95 {p95} ms  servers "
                f"{summary['server_cores_busy']} cores {summary['per_process_cores']}  load generator "
                f"{point['load_generator_cpu_s']} s CPU",
                flush=True,
            )
            points.append(summary)
            if not carried:
                break
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()
    carried_calls = max((p["calls"] for p in points if p["carried"]), default=0)
    return {"processes": processes, "carried": carried_calls, "points": points}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    ladder = [int(c) for c in args.calls.split(",")]
    sizes = []
    with database(args.database_url) as url:
        for processes in [int(p) for p in args.processes.split(",")]:
            sizes.append(await one_size(url, processes, ladder, args))
    for size in sizes:
        print(f"{size['processes']} process(es): {size['carried']} calls carried (p95 <= {TARGET_P95_MS:g} ms)")
    return {"environment": environment(), "target_p95_ms": TARGET_P95_MS, "sizes": sizes}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="instances behind nginx, one run each")
    parser.add_argument("--calls", default="100,200,300", help="the ladder of concurrent calls")
    parser.add_argument("--turns", type=int, default=2, help="caller turns per call")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls arrive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="a scratch PostgreSQL database (default: throwaway)")
    parser.add_argument("--tts-cache", default=str(REPO_ROOT / "bench" / "results" / "tts"), help="prompt cache")
    parser.add_argument("--json", default=str(REPO_ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args(argv)
    Path(args.tts_cache).mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main_async(args))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
