"""`handoff fixtures build`: caller recordings are made reproducibly from the committed manifest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from voice.errors import AudioFormatError
from voice.fixtures import add_line_noise, build_fixtures, load_manifest
from voice.wavfile import read_ulaw_wav

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "audio_fixtures" / "manifest.yaml"
SHIPPED = ROOT / "voice" / "assets" / "manifest.yaml"  # the probe and warm-up speech the server ships
MANIFESTS = pytest.mark.parametrize("manifest_path", [MANIFEST, SHIPPED], ids=["fixtures", "shipped"])


def espeak_version() -> str:
    return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.split()[3]


async def test_building_twice_gives_identical_recordings_with_transcripts_beside_them(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("rate: 160\nutterances:\n  - id: a/hello\n    text: Hello there.\n"
                        "  - id: b\n    text: Agent please.\n    noise: 0.05\n")  # fmt: skip
    first = [p.read_bytes() for p in await build_fixtures(manifest, tmp_path / "one")]
    second = [p.read_bytes() for p in await build_fixtures(manifest, tmp_path / "two")]
    assert first == second
    assert (tmp_path / "one" / "a" / "hello.txt").read_text() == "Hello there.\n"
    audio = read_ulaw_wav(tmp_path / "one" / "a" / "hello.wav")
    assert 0.3 < len(audio) / 8000 < 3.0


def test_line_noise_is_seeded_by_the_recording_id() -> None:
    audio = b"\xff" * 8000
    assert add_line_noise(audio, 0.02, "x") == add_line_noise(audio, 0.02, "x")
    assert add_line_noise(audio, 0.02, "x") != add_line_noise(audio, 0.02, "y")
    assert add_line_noise(audio, 0.0, "x") == audio


@MANIFESTS
def test_every_manifest_entry_has_its_committed_recording_and_transcript(manifest_path: Path) -> None:
    manifest = load_manifest(manifest_path)
    for entry in manifest.utterances:
        wav = manifest_path.parent / f"{entry.id}.wav"
        assert wav.is_file(), f"{wav} is missing: run `handoff fixtures build`"
        assert wav.with_suffix(".txt").read_text().strip() == entry.text


@MANIFESTS
async def test_committed_recordings_are_what_the_manifest_builds(tmp_path: Path, manifest_path: Path) -> None:
    built_with = load_manifest(manifest_path).espeak_ng
    if espeak_version() != built_with:
        pytest.skip(f"espeak-ng {espeak_version()} here; the fixtures were built with {built_with}")
    built = await build_fixtures(manifest_path, tmp_path)
    for path in built:
        committed = manifest_path.parent / path.relative_to(tmp_path)
        assert path.read_bytes() == committed.read_bytes(), f"{committed} differs from a fresh build"


def test_a_broken_manifest_names_the_entry_and_the_problem(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("utterances:\n  - id: Bad Id\n    text: hi\n")
    with pytest.raises(AudioFormatError, match=r"utterances\.0\.id"):
        load_manifest(manifest)
