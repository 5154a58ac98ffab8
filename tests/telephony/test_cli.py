"""The `handoff` command as a user runs it: a subprocess, its exit code and what it prints."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def handoff(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "telephony.cli", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=180,
    )  # fmt: skip


def test_serve_without_a_vosk_model_says_how_to_get_one_in_one_sentence(tmp_path: Path) -> None:
    result = handoff("serve", env={"HANDOFF_MODEL_CACHE_DIR": str(tmp_path), "HANDOFF_ASR": "vosk"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "handoff models fetch" in result.stderr and "HANDOFF_VOSK_MODEL_PATH" in result.stderr


def test_a_broken_setting_is_named_and_the_server_does_not_start(tmp_path: Path) -> None:
    result = handoff("serve", env={"HANDOFF_PORT": "eighty"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "HANDOFF_PORT" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_env_file_is_reported_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HANDOFF_END_OF_SPEECH_MS=soon\n")
    result = handoff("settings", cwd=tmp_path)
    assert result.returncode == 2 and "HANDOFF_END_OF_SPEECH_MS" in result.stderr


def test_settings_never_print_secrets(tmp_path: Path) -> None:
    result = handoff(
        "settings", env={"HANDOFF_TWILIO_AUTH_TOKEN": "s3cret-value", "HANDOFF_API_TOKEN": "t0ken"}, cwd=tmp_path
    )
    assert result.returncode == 0
    assert "s3cret-value" not in result.stdout and "t0ken" not in result.stdout
    assert "HANDOFF_TWILIO_AUTH_TOKEN=***" in result.stdout


def test_replay_check_of_the_person_scenario_passes_and_shows_the_transfer_with_its_whisper(tmp_path: Path) -> None:
    scenario = ROOT / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"
    result = handoff(
        "replay", "--scenario", str(scenario), "--asr", "oracle", "--check", "--speed", "10",
        "--out-dir", str(tmp_path), env={"HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout and "transfer to +15005550002" in result.stdout
    assert "whisper:" in result.stdout and "talk to a real person" in result.stdout
    assert (tmp_path / "talk_to_a_person.json").is_file()
    assert (tmp_path / "talk-to-a-person.bot.wav").is_file()


def test_replay_check_exits_nonzero_when_an_expectation_fails(tmp_path: Path) -> None:
    source = ROOT / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"
    data = yaml.safe_load(source.read_text())
    data["expect"]["outcome"] = "voicemail"
    data["caller"][0]["audio"] = str(ROOT / "audio_fixtures" / "person" / "ask_for_agent.wav")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(data))
    result = handoff(
        "replay", "--scenario", str(wrong), "--check", "--speed", "10", "--out-dir", str(tmp_path),
        env={"HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "outcome" in result.stdout and "timeline:" in result.stdout


def test_replay_of_a_broken_scenario_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncaller:\n  - dtmf: '0'\n    hangup: true\n")
    result = handoff("replay", "--scenario", str(bad), "--check")
    assert result.returncode == 1
    assert "bad.yaml" in result.stderr and "caller[0]" in result.stderr and "Traceback" not in result.stderr


def test_serve_answers_on_loopback_and_replay_plays_a_call_against_it(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_")}
    env.update({
        "HANDOFF_PORT": str(port), "HANDOFF_ASR": "oracle", "HANDOFF_TWILIO_AUTH_TOKEN": "auth-for-test",
        "HANDOFF_API_TOKEN": "api-for-test", "HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts"),
        "HANDOFF_FIXED_NOW": "2026-11-24T15:00:00Z", "HANDOFF_REST_TRANSFERS": "false",
        "HANDOFF_DATA_DIR": str(tmp_path / "data"),
    })  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "telephony.cli", "serve"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120  # start-up synthesises every fixed prompt into a fresh cache
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).json()["asr"] == "oracle":
                    break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the server did not come up") from None
                time.sleep(0.1)
        scenario = ROOT / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"
        result = handoff(
            "replay", "--url", base, "--scenario", str(scenario), "--check", "--speed", "10",
            "--out-dir", str(tmp_path), env={k: v for k, v in env.items() if k != "HANDOFF_PORT"},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "transfer to +15005550002" in result.stdout
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert "ORACLE ASR" in output  # the server says loudly that it is not recognising speech
    assert "auth-for-test" not in output and "api-for-test" not in output  # secrets stay out of logs


def test_a_broken_bot_pack_is_named_with_its_path_and_the_server_does_not_start(tmp_path: Path) -> None:
    pack = tmp_path / "pack.yaml"
    pack.write_text("company: X\nqueues: []\n")
    result = handoff("serve", env={"HANDOFF_BOT_PACK": str(pack), "HANDOFF_ASR": "oracle"}, cwd=tmp_path)
    assert result.returncode == 1
    assert str(pack) in result.stderr and "Traceback" not in result.stderr


def test_models_check_loads_the_model_in_a_probe_and_recognises_a_second_of_audio(korean_model_path: Path) -> None:
    result = handoff("models", "check", env={"HANDOFF_VOSK_MODEL_PATH": str(korean_model_path)})
    assert result.returncode == 0, result.stderr
    assert str(korean_model_path) in result.stdout.replace("\n", "") and "loads" in result.stdout


def test_models_check_refuses_a_folder_of_garbage_that_looks_like_a_model(tmp_path: Path) -> None:
    for name in ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf", "graph/HCLG.fst"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("not kaldi\n")
    result = handoff("models", "check", env={"HANDOFF_VOSK_MODEL_PATH": str(tmp_path)})
    assert result.returncode == 1
    assert "could not load" in result.stderr and "Traceback" not in result.stderr


def test_replay_with_vosk_of_the_korean_scenario_ends_in_a_handoff_carrying_the_recognised_words(
    tmp_path: Path, korean_model_path: Path
) -> None:
    scenario = ROOT / "tests" / "packs" / "scenarios_ko" / "agent_then_login.yaml"
    env = {
        "HANDOFF_BOT_PACK": str(ROOT / "tests" / "packs" / "hanbit_ko.yaml"),
        "HANDOFF_VOSK_MODEL_PATH": str(korean_model_path),
        "HANDOFF_ASR_WORKERS": "1",
        "HANDOFF_ASR_PREWARM": "0",
        "HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts"),
    }
    result = handoff(
        "replay", "--scenario", str(scenario), "--asr", "vosk", "--check", "--out-dir", str(tmp_path), env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "asr=vosk (recognised)" in result.stdout and "PASS" in result.stdout
    assert "handoff:  distress / explicit_request -> queue accounts" in result.stdout
    assert "상담원" in result.stdout  # the recognised words, in the transcript and the whisper


def test_users_add_creates_an_account_that_signs_in_and_refuses_bad_input(tmp_path: Path) -> None:
    from telephony.server.console.accounts import password_matches
    from telephony.store import Store, sqlite_url

    env = {"HANDOFF_DATA_DIR": str(tmp_path / "data")}
    added = handoff("users", "add", "ada", "--role", "supervisor", "--password", "a long enough password", env=env)
    assert added.returncode == 0 and "added ada (supervisor)" in added.stdout
    again = handoff("users", "add", "ada", "--password", "a long enough password", env=env)
    assert again.returncode == 1 and "exists already" in again.stderr
    boss = handoff("users", "add", "bo", "--role", "boss", "--password", "a long enough password", env=env)
    assert boss.returncode == 2
    short = handoff("users", "add", "bo", "--password", "short", env=env)
    assert short.returncode == 2 and "at least 10 characters" in short.stderr and "Traceback" not in short.stderr
    reset = handoff("users", "add", "ada", "--reset", "--role", "agent", "--password", "another long password", env=env)
    assert reset.returncode == 0
    store = Store(sqlite_url(tmp_path / "data"))
    found = store.credentials("ada")
    store.close()
    assert found is not None and found[0].role == "agent"
    assert password_matches(found[1], "another long password") and "another long password" not in found[1]
    listed = handoff("users", "list", env=env)
    assert "ada\tagent" in listed.stdout


def test_review_sample_mark_report_and_export_close_the_loop(tmp_path: Path) -> None:
    env = {"HANDOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'calls.db'}", "HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts")}
    scenario = ROOT / "audio_fixtures" / "scenarios" / "talk_to_a_person.yaml"
    played = handoff("replay", "--scenario", str(scenario), "--out-dir", str(tmp_path / "out"), "-q", env=env)
    assert played.returncode == 0, played.stderr
    window = ("--since", "2026-11-01", "--until", "2026-12-01")
    sample = handoff("review", "sample", "--per-category", "5", *window, env=env)
    assert sample.returncode == 0, sample.stderr
    (line,) = sample.stdout.splitlines()
    handoff_id, call_sid, _, reason, queue, verdict, _ = line.split("\t")
    assert (reason.split("/")[0], queue, verdict) == ("distress", "orders", "-")
    marked = handoff("review", "mark", call_sid, "--verdict", "avoidable", "--layer", "trigger", "--note", "n", env=env)
    assert marked.returncode == 0 and "avoidable (trigger)" in marked.stdout
    bad = handoff("review", "mark", handoff_id, "--verdict", "perhaps", env=env)
    assert bad.returncode == 2 and "verdict" in bad.stderr and "Traceback" not in bad.stderr
    assert handoff("review", "sample", *window, env=env).stdout == ""  # reviewed ones leave the sample
    report = handoff("review", "report", *window, "--format", "json", env=env)
    assert report.returncode == 0
    assert '"avoidable": 1' in report.stdout and '"layer": "trigger"' in report.stdout
    out = tmp_path / "scenarios" / "person_avoidable.yaml"
    exported = handoff("review", "export", call_sid, "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    assert yaml.safe_load(out.read_text())["expect"] == {"decision": "end"}
    check = handoff("replay", "--scenario", str(out), "--check", "--out-dir", str(tmp_path / "out2"), "-q",
                    env={"HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts")})  # fmt: skip
    assert check.returncode == 1 and "FAIL" in check.stdout
    assert handoff("review", "export", "CAnope", "--out", str(out), env=env).returncode == 1


def test_a_worker_without_the_job_queue_says_what_to_set(tmp_path: Path) -> None:
    result = handoff("worker", env={"HANDOFF_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2 and "HANDOFF_JOBS=queue" in result.stderr and "Traceback" not in result.stderr


def test_fixtures_month_fills_the_database_and_the_review_report_reads_it(tmp_path: Path) -> None:
    env = {"HANDOFF_DATA_DIR": str(tmp_path / "data"), "HANDOFF_TTS_CACHE_DIR": str(tmp_path / "tts")}
    made = handoff("fixtures", "month", "--calls", "6", "--days", "5", "--callers", "3", "--seed", "2", env=env)
    assert made.returncode == 0, made.stderr
    handoffs = int(made.stdout.split(" calls, ")[1].split(" handoffs")[0])
    report = handoff("review", "report", "--since", "2026-10-01", "--until", "2026-11-01", "--format", "json", env=env)
    assert report.returncode == 0 and f'"handoffs": {handoffs},' in report.stdout
    missing = handoff("fixtures", "month", "--scenarios", str(tmp_path / "nowhere"), env=env)
    assert (
        missing.returncode == 1 and "cannot read the scenario" in missing.stderr and "Traceback" not in missing.stderr
    )


def test_the_server_freezes_what_start_up_built_and_passes_over_young_objects_every_10000_allocations() -> None:
    from telephony import cli

    before = gc.get_threshold()
    try:
        cli.tune_collector()
        assert gc.get_threshold() == (cli.YOUNG_COLLECTION_EVERY, before[1], before[2])
        assert cli.YOUNG_COLLECTION_EVERY == 10_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
