"""The `handoff` command: serve calls, replay scenarios, build audio fixtures, fetch speech models."""

from __future__ import annotations

import asyncio
import gc
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
review_app = typer.Typer(help="The review cycle: sample handoffs, mark verdicts, report, export scenarios.")
review_app.info.no_args_is_help = True
app.add_typer(review_app, name="review")

YOUNG_COLLECTION_EVERY = 10_000  # container allocations between the collector's young passes (CPython: 700)


def tune_collector() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    What start-up built (the bot pack's models, the engines) lives as long as the server: frozen out of the
    collector's view, a full collection no longer walks it (it took 165 ms under 100 calls, a pause every caller
    heard as a late reply). A call's work allocates many short-lived containers: with young passes every 10,000
    allocations instead of 700, 100 calls under `bench/load.py` spent 19 ms in the collector instead of 136, with
    no older pass, and its longest pause was 5 ms instead of 43."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


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
    from telephony.server.app import create_app
    from telephony.server.drain import DrainingServer
    from telephony.server.frames import uvicorn_config
    from telephony.server.services import build_services

    settings = _settings(host=host, port=port, asr=asr)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        services = build_services(settings)
    except (ModelNotFound, BotPackError) as exc:
        raise _fail(str(exc)) from None
    except VoiceError as exc:
        raise _fail(f"the speech engines could not start: {exc}") from None
    config = uvicorn_config(create_app(services), host=settings.host, port=settings.port,
                            log_level=settings.log_level, read_batch=settings.media_read_batch)  # fmt: skip
    tune_collector()
    DrainingServer(config, services).run()  # SIGTERM: live calls finish or are handed on before it stops


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=100, help="Jobs run at once.")] = 4,
) -> None:
    """Run background jobs from PostgreSQL's job queue: help-desk deliveries and the callback dialer (needs
    HANDOFF_JOBS=queue and HANDOFF_DATABASE_URL on PostgreSQL; as many workers as you like)."""
    from telephony.desk.jobs import WorkerParts, job_app, run_worker
    from telephony.server.services import build_services

    settings = _settings()
    if settings.jobs != "queue":
        raise _fail("HANDOFF_JOBS is in_process: each `handoff serve` runs its own background work; "
                    "set HANDOFF_JOBS=queue (and a PostgreSQL HANDOFF_DATABASE_URL) to run workers", 2)  # fmt: skip
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # every request's headers, otherwise
    try:
        services = build_services(settings)  # with vosk, the model transcribes voicemail
    except (ModelNotFound, BotPackError) as exc:
        raise _fail(str(exc)) from None
    out.print(f"worker: taking jobs from {services.store.display_url} ({concurrency} at once)", highlight=False)
    parts = WorkerParts(services.store, services.deliverer, services.dialer, services.desk.voicemail,
                        settings.retention_days)  # fmt: skip
    asyncio.run(run_worker(job_app(parts), concurrency))


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


@fixtures_app.command("month")
def fixtures_month(
    start: Annotated[str, typer.Option(help="The month's first day (ISO date, UTC).")] = "2026-10-01",
    days: Annotated[int, typer.Option(min=1, max=366, help="How many days.")] = 30,
    calls: Annotated[int, typer.Option(min=1, max=20_000, help="How many calls in all.")] = 200,
    callers: Annotated[int, typer.Option(min=1, help="Distinct caller numbers (fewer: more repeat contact).")] = 80,
    seed: Annotated[int, typer.Option(help="The same seed gives the same month.")] = 7,
    scenarios: Annotated[Path, typer.Option(help="Where the template scenarios are.")] = Path(
        "audio_fixtures/scenarios"
    ),
) -> None:
    """Fill the configured database with a month of synthetic calls, replayed through the real dialog and desk,
    then agents' wrap-ups and reviewers' verdicts: data for the analytics and review pages."""
    import tempfile

    from telephony.replay.month import make_month, plan_month
    from telephony.store import sqlite_url

    first = _since(start)
    settings = _settings()
    url = settings.database_url or sqlite_url(settings.data_dir)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")  # not per call
    try:
        plan = plan_month(scenarios, first, days=days, calls=calls, seed=seed, callers=callers)
        with tempfile.TemporaryDirectory(prefix="handoff-month-") as scratch:
            run = settings.model_copy(update={"database_url": url, "data_dir": Path(scratch)})
            truth, broken = asyncio.run(make_month(plan, run, seed=seed))
    except (ScenarioError, ReplayError, VoiceError, BotPackError) as exc:
        raise _fail(str(exc)) from None
    store_name = "the configured database" if settings.database_url else url
    out.print(
        f"{truth.calls} calls, {truth.handoffs} handoffs, {truth.wrapups} wrap-ups, {truth.reviewed} reviews "
        f"({truth.avoidable} avoidable) from {first:%Y-%m-%d} over {days} days into {store_name}",
        highlight=False,
    )
    if broken:
        raise _fail(f"{len(broken)} replays did not end as their scenario expects: {', '.join(broken[:10])}")


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


def _since(text: str) -> Any:
    """`7d`, `24h`, `90m` before now, or an ISO date or time (UTC unless it says otherwise)."""
    from datetime import UTC, datetime, timedelta

    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"{text!r} is neither a span like 7d, 24h or 90m nor an ISO date", 2) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _window(since: str, until: str | None) -> tuple[Any, Any]:
    from datetime import UTC, datetime

    start, end = _since(since), (_since(until) if until else datetime.now(UTC))
    if start >= end:
        raise _fail("--since must come before --until", 2)
    return start, end


@review_app.command("sample")
def review_sample(
    per_category: Annotated[int, typer.Option(min=1, max=1000, help="Handoffs per escalation category.")] = 5,
    since: Annotated[str, typer.Option(help="Window start: 7d, 24h, or an ISO date.")] = "7d",
    until: Annotated[str | None, typer.Option(help="Window end (default now).")] = None,
    include_reviewed: Annotated[bool, typer.Option("--all", help="Include handoffs already reviewed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Recent handoffs across the top escalation categories, newest first, to mark avoidable or necessary."""
    start, end = _window(since, until)
    store = _store()
    try:
        picked = store.review_sample(start, end, per_category, include_reviewed=include_reviewed)
    finally:
        store.close()
    for c in picked:
        if as_json:
            typer.echo(json.dumps({**c.__dict__, "at": c.at.isoformat()}))
        else:
            issue = c.primary_issue.splitlines()[0] if c.primary_issue else ""
            verdict = c.verdict or "-"
            when = f"{c.at:%Y-%m-%d %H:%M}"
            typer.echo(
                "\t".join((c.handoff_id, c.call_sid, when, f"{c.category}/{c.trigger}", c.queue, verdict, issue))
            )
    if not picked:
        err.print("no handoffs to review in that window")


@review_app.command("mark")
def review_mark(
    handoff: Annotated[str, typer.Argument(help="The handoff id, or the call's CallSid.")],
    verdict: Annotated[str, typer.Option(help="avoidable or necessary.")],
    layer: Annotated[
        str | None,
        typer.Option(help="The layer at fault: prompt, trigger, routing, summary_template, tool_or_data, asr."),
    ] = None,
    note: Annotated[str | None, typer.Option(help="What the reviewer saw.")] = None,
    queue: Annotated[
        str | None, typer.Option(help="Avoidable: the queue it should have reached (none: the bot ends).")
    ] = None,
    reviewer: Annotated[str, typer.Option(help="Who reviewed it.")] = os.environ.get("USER", "reviewer"),
) -> None:
    """Record a reviewer's verdict on a handoff (marking it again replaces the verdict)."""
    from telephony.store import StoreError
    from telephony.store.review_records import Verdict

    store = _store()
    try:
        found = store.get_handoff(handoff) or store.handoff_for_call(handoff)
        if found is None:
            raise _fail(f"no handoff {handoff!r} (give a handoff id or a CallSid)")
        saved = store.save_review(str(found["handoff_id"]), reviewer, Verdict(verdict, layer, note, queue or None))
    except StoreError as exc:
        raise _fail(str(exc), 2) from None
    finally:
        store.close()
    out.print(f"{saved['handoff_id']}: {saved['verdict']}" + (f" ({saved['layer']})" if saved["layer"] else ""))


@review_app.command("report")
def review_report(
    since: Annotated[str, typer.Option(help="Window start: 30d, 24h, or an ISO date.")] = "30d",
    until: Annotated[str | None, typer.Option(help="Window end (default now).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="md or json.")] = "md",
    out_file: Annotated[Path | None, typer.Option("--out", help="Write here instead of printing.")] = None,
) -> None:
    """Dead ends, the top avoidable reasons, and agent feedback by queue and by summary field."""
    from telephony.desk.review import as_markdown, review_report

    if fmt not in ("md", "json"):
        raise _fail(f"--format must be md or json, not {fmt!r}", 2)
    start, end = _window(since, until)
    store = _store()
    try:
        report = review_report(store.review_facts(start, end))
    finally:
        store.close()
    title = f"Handoff review, {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    text = as_markdown(report, title) if fmt == "md" else json.dumps(report.as_json(), indent=2) + "\n"
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
        out.print(f"wrote {out_file}")


@review_app.command("export")
def review_export(
    call_sid: Annotated[str, typer.Argument(help="The reviewed call's CallSid.")],
    out_file: Annotated[Path, typer.Option("--out", help="The scenario file to write (audio_fixtures/scenarios/...).")],
) -> None:
    """Write a reviewed call as a replay scenario; its expect block follows the reviewer's verdict."""
    from telephony.replay.export import export_scenario

    store = _store()
    try:
        call = store.get_call(call_sid)
        handoff = store.handoff_for_call(call_sid) if call is not None else None
        review = store.review(str(handoff["handoff_id"])) if handoff is not None else None
    finally:
        store.close()
    if call is None:
        raise _fail(f"no call {call_sid!r} in the store")
    if review is None:
        raise _fail(f"call {call_sid} has no reviewed handoff: mark it first (handoff review mark)")
    try:
        written = export_scenario(call, review, out_file)
    except ScenarioError as exc:
        raise _fail(str(exc)) from None
    out.print(f"wrote {written}; check it with: handoff replay --scenario {written} --check")


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
