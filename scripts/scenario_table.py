"""Summarise replay results as a Markdown table: scenario, outcome, category/trigger, bot turns before handoff.

handoff replay --scenario audio_fixtures/scenarios --check --speed 10 --out-dir replay-out
python scripts/scenario_table.py replay-out
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from telephony.replay.checks import bot_turns_before_handoff


def main(folder: Path) -> None:
    print("| scenario | passed | decision | outcome | category / trigger | queue | bot turns before handoff |")
    print("|---|---|---|---|---|---|---|")
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        decision = (result.get("decision") or {}).get("kind", "-")
        handoff = result.get("handoff")
        outcome = result["outcome"].get("kind", "-")
        if handoff:
            reason = f"{handoff['reason']['category']} / {handoff['reason']['trigger']}"
            queue = handoff["recommended_queue"]
            turns = str(bot_turns_before_handoff(result["prompts"]))
        else:
            reason, queue, turns = "-", "-", "-"
        passed = {True: "yes", False: "NO", None: "-"}[result.get("passed")]
        print(f"| {result['scenario']} | {passed} | {decision} | {outcome} | {reason} | {queue} | {turns} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "replay-out"))
