"""Does a vosk model really work? Load it in a process of its own and recognise the bundled second of audio.

`handoff models check` runs this as `python -m voice.model_probe MODEL_DIR`, because vosk ends the whole
process on some broken models instead of raising: a probe that dies says so without taking the CLI with it.
It prints one JSON line: {"ok": true, "text": ...} or {"ok": false, "problem": ...}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import as_file, files
from pathlib import Path

from voice.codec import PCM_FRAME_BYTES, ulaw_to_pcm16

PROBE_TIMEOUT_S = 120.0


def recognise_probe(model: Path) -> str:
    """Load the model and recognise the bundled second of audio; the words heard (maybe none). Raises on failure."""
    from voice.stt import VoskRecognizerFactory
    from voice.wavfile import read_ulaw_wav

    with as_file(files("voice.assets").joinpath("probe.wav")) as path:
        pcm = ulaw_to_pcm16(read_ulaw_wav(path))
    recognizer = VoskRecognizerFactory(model).new_recognizer("probe")
    recognizer.start_utterance(0)
    for i in range(0, len(pcm), PCM_FRAME_BYTES):
        recognizer.accept(pcm[i : i + PCM_FRAME_BYTES])
    final = recognizer.finish_utterance(0, len(pcm) // 16)
    recognizer.close()
    return final.text if final is not None else ""


def probe(model: Path) -> tuple[bool, str]:
    """Run the probe in a fresh process: (True, words heard) or (False, what went wrong, in one sentence)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "voice.model_probe", str(model)],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, f"loading the model in {model} took longer than {PROBE_TIMEOUT_S:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        why = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
        return False, f"vosk could not load or run the model in {model} (the probe process ended with {why})"
    answer = json.loads(lines[-1])
    return (True, str(answer["text"])) if answer["ok"] else (False, str(answer["problem"]))


def main() -> int:
    from voice.errors import VoiceError

    model = Path(sys.argv[1])
    try:
        text = recognise_probe(model)
    except VoiceError as exc:
        print(json.dumps({"ok": False, "problem": str(exc)}))
        return 1
    print(json.dumps({"ok": True, "text": text}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
