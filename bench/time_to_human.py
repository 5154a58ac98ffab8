"""From the handoff decision to the caller bridged with an agent: the `<Dial>` transfer against the conference
transfer, on the same calls, with the same agent (rings for `--ring` s, presses 1 `--accept` s after the brief).

Each scenario is replayed in process (oracle ASR, the real prompts from pyttsx3, Twilio faked on loopback) in
both transfer modes. The harness's clock for the agent's side is simulated: ring time and time to press 1 come
from the options, and what the agent hears is timed at 150 words a minute (Twilio's <Say>). The caller's side is
the replay's media clock: the decision, and the end of the announcement. See
`telephony.replay.conference.time_to_human_ms` for exactly how each mode is counted.

    python bench/time_to_human.py
    python bench/time_to_human.py --scenario audio_fixtures/scenarios/login_lockout.yaml --ring 2 --accept 1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from telephony.replay.in_process import replay_in_process  # noqa: E402
from telephony.replay.player import ReplayOptions  # noqa: E402
from telephony.replay.scenario import load_scenario  # noqa: E402
from telephony.server.settings import Settings  # noqa: E402

SCENARIOS = [  # handoffs to phone and Client targets (SIP and TaskRouter targets always dial)
    "login_lockout.yaml", "talk_to_a_person.yaml", "cancellation.yaml", "distress.yaml", "reschedule_insurance.yaml",
]  # fmt: skip


async def measure(path: Path, mode: str, ring: float, accept: float, settings: Settings) -> int | None:
    scenario = load_scenario(path).model_copy(
        update={
            "transfer_mode": mode,
            "agent": "answer",
            "agent_answers_after_s": ring,
            "agent_accepts_after_s": accept,
        }
    )
    result = await replay_in_process(scenario, ReplayOptions(), settings=settings)
    waited = result.outcome.get("time_to_human_ms")
    return int(waited) if isinstance(waited, int) else None


async def main_async(args: argparse.Namespace) -> int:
    settings = Settings(tts_cache_dir=Path(args.tts_cache), log_level="warning", _env_file=None)  # type: ignore[call-arg]
    paths = [Path(p) for p in args.scenario] or [REPO_ROOT / "audio_fixtures" / "scenarios" / n for n in SCENARIOS]
    by_mode: dict[str, list[int]] = {"dial": [], "conference": []}
    print(f"agent rings {args.ring} s, presses 1 {args.accept} s after the brief")
    for path in paths:
        row = []
        for mode in by_mode:
            waited = await measure(path, mode, args.ring, args.accept, settings)
            if waited is not None:
                by_mode[mode].append(waited)
            row.append(f"{mode} {waited / 1000:.1f} s" if waited is not None else f"{mode} -")
        print(f"{path.name:32} " + "   ".join(row))
    for mode, values in by_mode.items():
        if values:
            print(f"median {mode}: {statistics.median(values) / 1000:.1f} s over {len(values)} calls")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="scenario files (default: four handoffs)")
    parser.add_argument("--ring", type=float, default=3.0, help="seconds the agent's phone rings")
    parser.add_argument("--accept", type=float, default=1.0, help="seconds from the brief's end to the key press")
    parser.add_argument("--tts-cache", default=str(REPO_ROOT / "bench" / "results" / "tts"))
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
