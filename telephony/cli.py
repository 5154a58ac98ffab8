"""The `handoff` command: serve calls, replay scenarios, build audio fixtures, fetch speech models."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, cast, get_args

import typer
from rich.console import Console

from dialogs.errors import BotPackError
from telephony.replay.errors import ReplayError, ScenarioError
from telephony.server.settings import SettingsError, load_settings, settings_table
from voice.errors import ModelFetchError, ModelNotFound, VoiceError

app = typer.Typer(help="A phone bot that hands calls to people with the context attached.", no_args_is_help=True)
models_app = typer.Typer(help="Speech recognition models.", no_args_is_help=True)
fixtures_app = typer.Typer(help="Caller audio fixtures for replays and tests.", no_args_is_help=True)
app.add_typer(models_app, name="models")
users_app = typer.Typer(help="Console accounts (agents and supervisors).", no_args_is_help=True)
app.add_typer(fixtures_app, name="fixtures")
app.add_typer(users_app, name="users")
out = Console(soft_wrap=True)  # whole lines: a narrow pipe must not wrap what scripts read
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code)


def _settings(**overrides: object) -> Any:
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        raise _fail(str(exc), 2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HANDOFF_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (HANDOFF_PORT).")] = None,
    asr: Annotated[str | None, typer.Option(help="vosk, or oracle for tests (HANDOFF_ASR).")] = None,
) -> None:
    """Answer Twilio calls: voice webhook, media stream, and the JSON API."""
    import uvicorn

    from telephony.server.app import create_app
    from telephony.server.services import build_services

    settings = _settings(host=host, port=port, asr=asr)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        services = build_services(settings)
    except (ModelNotFound, BotPackError) as exc:
        raise _fail(str(exc)) from None
    except VoiceError as exc:
        raise _fail(f"the speech engines could not start: {exc}") from None
    uvicorn.run(
        create_app(services), host=settings.host, port=settings.port, log_level=settings.log_level,
        ws="websockets-sansio", ws_per_message_deflate=False,  # audio frames: compressing them costs, saves little
    )  # fmt: skip


@app.command()
def replay(
    scenario: Annotated[list[Path], typer.Option(help="Scenario file or folder of them (repeatable).")],
    url: Annotated[str | None, typer.Option(help="A running server's base URL; in-process if not given.")] = None,
    asr: Annotated[str, typer.Option(help="oracle (reference text, timed by the real VAD) or vosk.")] = "oracle",
    asr_wer: Annotated[float, typer.Option(help="Oracle ASR noise: substitute or drop this share of words.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the oracle ASR noise.")] = 0,
    speed: Annotated[float, typer.Option(help="Wall clock: 1 plays in real time; 10 ten times faster.")] = 1.0,
    clock: Annotated[
        str, typer.Option(help="virtual (in process: each frame waits for the call to settle) or wall.")
    ] = "virtual",
    agent: Annotated[str | None, typer.Option(help="Agent behaviour: answer, busy, no-answer, ...")] = None,
    check: Annotated[bool, typer.Option("--check", help="Verify each scenario's expect block.")] = False,
    out_dir: Annotated[Path, typer.Option(help="Where result JSON and bot-audio WAVs go.")] = Path("replay-out"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the verdicts.")] = False,
) -> None:
    """Play Twilio's part of recorded calls against the server, and report what the bot heard, said and did."""
    from telephony.replay.checks import check as run_checks
    from telephony.replay.in_process import replay_in_process
    from telephony.replay.player import ReplayOptions, TwilioPlayer, caller_audio
    from telephony.replay.scenario import AgentBehaviour, load_scenario
    from telephony.replay.wires import NetworkWire
    from voice.tts import SpeechSynthesizer

    if asr not in ("oracle", "vosk"):
        raise _fail(f"--asr must be oracle or vosk, not {asr!r}", 2)
    files: list[Path] = []
    for path in scenario:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    if not files:
        raise _fail("no scenario files given", 2)
    if clock not in ("virtual", "wall"):
        raise _fail(f"--clock must be virtual or wall, not {clock!r}", 2)
    behaviours = get_args(AgentBehaviour)
    if agent is not None and agent not in behaviours:
        raise _fail(f"--agent must be one of {', '.join(behaviours)}, not {agent!r}", 2)
    options = ReplayOptions(
        speed=speed,
        asr=asr,
        wer=asr_wer,
        seed=seed,
        agent=cast(AgentBehaviour | None, agent),
        out_dir=out_dir,
        clock="wall" if url is not None or clock == "wall" else "virtual",  # a running server: real time
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = _settings()

    async def one(path: Path) -> bool:
        loaded = load_scenario(path)
        if url is None:
            result = await replay_in_process(loaded, options, settings=settings)
        else:
            synth = SpeechSynthesizer(settings.tts_cache_dir, rate=165)
            try:
                audio = await caller_audio(loaded, synth.synthesize)
            finally:
                synth.close()
            player = TwilioPlayer(
                NetworkWire(url, speed),
                auth_token=os.environ.get("HANDOFF_TWILIO_AUTH_TOKEN", ""),
                api_token=os.environ.get("HANDOFF_API_TOKEN"),
                options=options,
            )
            result = await player.run(loaded, audio)
        if check:
            checks = run_checks(result, loaded.expect)
            result.checks = [c.as_dict() for c in checks]
            result.passed = all(c.ok for c in checks)
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path = out_dir / f"{path.stem}.json"
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
        _print_result(result, json_path, quiet=quiet)
        return result.passed is not False

    async def run_all() -> list[bool]:
        return [await one(path) for path in files]

    try:
        verdicts = asyncio.run(run_all())
    except (ScenarioError, ReplayError, VoiceError, BotPackError) as exc:
        raise _fail(str(exc)) from None
    if check:
        failed = verdicts.count(False)
        out.print(f"\n{len(verdicts) - failed} of {len(verdicts)} scenarios passed")
        if failed:
            raise typer.Exit(1)


def _print_result(result: Any, json_path: Path, *, quiet: bool) -> None:
    verdict = "" if result.passed is None else (" [green]PASS[/]" if result.passed else " [bold red]FAIL[/]")
    outcome = result.outcome
    out.print(
        f"[bold]{result.scenario}[/]{verdict}  call {result.call_sid}  asr={result.asr} "
        f"({'oracle ASR: reference text' if result.asr == 'oracle' else 'recognised'})",
        highlight=False,
    )
    if not quiet or result.passed is False:
        decision = result.decision or {}
        out.print(f"  decision: {decision.get('kind', 'none')} ({decision.get('reason', '-')})", highlight=False)
        target = f" to {outcome.get('target')}" if outcome.get("target") else ""
        out.print(
            f"  outcome:  {outcome.get('kind', 'none')}{target}  {outcome.get('dial_status', '')}", highlight=False
        )
        if outcome.get("whisper"):
            out.print(f"  whisper:  {outcome['whisper']}", highlight=False)
        for turn in result.transcript:
            conf = f" ({turn['confidence']:.2f})" if turn.get("confidence") is not None else ""
            out.print(f"  {turn['start_ms'] / 1000:7.2f}s {turn['speaker']:>6}{conf}: {turn['text']}", highlight=False)
        cut = [p for p in result.prompts if p["cut_off"]]
        for prompt in cut:
            out.print(f"  cut off: {prompt['prompt_id']} after {prompt['heard_ms']} ms", highlight=False)
        if result.handoff:
            handoff = result.handoff
            reason = handoff["reason"]
            out.print(
                f"  handoff:  {reason['category']} / {reason['trigger']} -> queue {handoff['recommended_queue']}"
                f" (urgency {handoff['urgency']})",
                highlight=False,
            )
    for c in result.checks:
        if not c["ok"]:
            out.print(f"  [red]✗ {c['name']}: expected {c['expected']!r}, got {c['actual']!r}[/]", highlight=False)
    if result.passed is False:
        out.print("  timeline:")
        for event in result.events:
            out.print(
                f"    {event['t_ms']:>7} {event['source']:>6} {event['kind']} {event['detail'] or ''}", highlight=False
            )
    out.print(f"  result:   {json_path}", highlight=False)


@fixtures_app.command("build")
def fixtures_build(
    manifest: Annotated[Path, typer.Option(help="The fixture manifest.")] = Path("audio_fixtures/manifest.yaml"),
) -> None:
    """Synthesise every caller recording in the manifest (8 kHz μ-law WAV, transcript beside it)."""
    from voice.fixtures import build_fixtures

    try:
        written = asyncio.run(build_fixtures(manifest))
    except VoiceError as exc:
        raise _fail(str(exc)) from None
    out.print(f"wrote {len(written)} recordings under {manifest.parent}")


@models_app.command("fetch")
def models_fetch(
    url: Annotated[str | None, typer.Option(help="Model archive URL (HANDOFF_VOSK_MODEL_URL).")] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the archive.")] = None,
    dest: Annotated[Path | None, typer.Option(help="Cache folder (HANDOFF_MODEL_CACHE_DIR).")] = None,
) -> None:
    """Download the vosk speech model (progress bar, checksum check) into the model cache."""
    from voice.models import fetch_model

    settings = _settings()
    try:
        path = fetch_model(
            url or settings.vosk_model_url,
            sha256 if sha256 is not None else settings.vosk_model_sha256,
            dest or settings.model_cache_dir,
            progress=sys.stderr.isatty(),
        )
    except ModelFetchError as exc:
        raise _fail(str(exc)) from None
    out.print(f"vosk model installed in {path}")


@models_app.command("check")
def models_check() -> None:
    """Say whether a vosk model can be found and really works: it is loaded and recognises a second of audio."""
    from voice.model_probe import probe
    from voice.models import locate_model

    settings = _settings()
    try:
        path = locate_model(settings.vosk_model_path, settings.model_cache_dir, settings.vosk_model_name)
    except ModelNotFound as exc:
        raise _fail(str(exc)) from None
    ok, detail = probe(path)
    if not ok:
        raise _fail(detail)
    out.print(f"vosk model: {path} (loads, and recognised the probe as {detail!r})", highlight=False)


def _store() -> Any:
    from telephony.store import Store, StoreError, sqlite_url

    settings = _settings()
    try:
        store = Store(settings.database_url or sqlite_url(settings.data_dir))
        store.migrate()
    except StoreError as exc:
        raise _fail(str(exc)) from None
    return store


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The name they sign in with.")],
    role: Annotated[str, typer.Option(help="agent or supervisor.")] = "agent",
    password: Annotated[
        str | None, typer.Option(help="For scripts; without it the password is asked for, twice, unechoed.")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Give an existing account a new password (and role).")] = False,
) -> None:
    """Create a console account (or, with --reset, set an existing one's password and role)."""
    from telephony.server.console.accounts import hash_password
    from telephony.store import StoreError
    from telephony.store.models import ROLES

    if role not in ROLES:
        raise _fail(f"--role must be one of {', '.join(sorted(ROLES))}, not {role!r}", 2)
    if not name.strip() or len(name) > 128:
        raise _fail("the name must be 1 to 128 characters", 2)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        hashed = hash_password(password)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    store = _store()
    try:
        if reset:
            if not store.set_password(name.strip(), hashed, role):
                raise _fail(f"there is no user named {name!r}")
            out.print(f"{name}: new password set; role {role}; their open sessions are signed out")
            return
        account = store.add_user(name.strip(), hashed, role)
    except StoreError as exc:
        raise _fail(str(exc)) from None
    finally:
        store.close()
    out.print(f"added {account.name} ({account.role})")


@users_app.command("list")
def users_list() -> None:
    """The console accounts and their roles."""
    store = _store()
    try:
        for account in store.list_users():
            state = "\tdisabled" if account.disabled else ""
            typer.echo(f"{account.name}\t{account.role}{state}")  # tab-separated, for scripts
    finally:
        store.close()


@app.command("settings")
def show_settings(markdown: Annotated[bool, typer.Option("--markdown", help="The README table.")] = False) -> None:
    """List every setting with its environment variable (values of secrets are never printed)."""
    if markdown:
        out.print(settings_table(), highlight=False, soft_wrap=True)
        return
    settings = _settings()
    for name, value in settings.model_dump().items():
        shown = "***" if "token" in name and value else value
        out.print(f"HANDOFF_{name.upper()}={'' if shown is None else shown}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    app()
