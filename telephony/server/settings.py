"""The one settings object of a handoff server, read from HANDOFF_* environment variables or a .env file.

Every field is documented here; the README's configuration table is generated from these descriptions
(`handoff settings --markdown`), so the two never drift apart.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from telephony.calls.ports import MAX_READ_BATCH
from voice.models import DEFAULT_CACHE_DIR, DEFAULT_MODEL_NAME, DEFAULT_MODEL_SHA256, DEFAULT_MODEL_URL

ENV_PREFIX = "HANDOFF_"


class SettingsError(Exception):
    """The configuration cannot be used; the message names each bad variable and what is wrong."""


class Settings(BaseSettings):
    """Server configuration; each field is set by the environment variable HANDOFF_<FIELD NAME>."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    host: str = Field("127.0.0.1", description="Address the server binds to; loopback unless you mean it.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port the server listens on.")
    public_url: str | None = Field(
        None,
        description="Public https:// base URL Twilio reaches this server at (e.g. https://bot.example.com). "
        "Used to build the stream URL and to check signatures; if unset, taken from each request's Host.",
    )
    twilio_account_sid: str = Field("AC00000000000000000000000000000000", description="Twilio account SID.")
    twilio_auth_token: SecretStr = Field(
        SecretStr(""), description="Twilio auth token: the key X-Twilio-Signature is checked with."
    )
    validate_signatures: bool = Field(
        True,
        description="Check X-Twilio-Signature on webhooks and the websocket upgrade (off: local tests only).",
    )
    twilio_api_base_url: str = Field(
        "https://api.twilio.com", description="Base URL of Twilio's REST API (a local fake in tests)."
    )
    api_token: SecretStr = Field(
        SecretStr(""), description="Bearer token for /api/*; the API refuses every request while it is empty."
    )
    transfer_number: str = Field(
        "+15005550006", description="Phone number (E.164) a handoff dials when no queue target is configured."
    )
    transfer_caller_id: str | None = Field(
        None, description="Caller ID shown to the agent on a transfer; the caller's own number if unset."
    )
    transfer_timeout_s: int = Field(20, ge=5, le=600, description="Seconds an agent's phone rings before giving up.")
    transfer_mode: Literal["dial", "conference"] = Field(
        "dial",
        description="dial: the caller's call dials the agent after the announcement (whisper, press 1). "
        "conference: the agent is rung at the decision, in parallel with the announcement, and the two meet in "
        "a conference (needs the REST API; SIP and TaskRouter targets still dial).",
    )
    bot_pack: Path | None = Field(
        None, description="Bot pack YAML (intents, policy, queues, prompts); the bundled Larkspur pack if unset."
    )
    asr: Literal["vosk", "oracle"] = Field(
        "vosk",
        description="Speech recogniser: vosk (a model on disk), or oracle (scripted text, tests only).",
    )
    asr_workers: int | None = Field(
        None, ge=1, le=256, description="Recognition worker processes (vosk); one a core if unset."
    )
    asr_prewarm: int = Field(
        2,
        ge=0,
        le=64,
        description="vosk decoders warmed before the first call (each worker gets them): ~3 s of start-up each.",
    )
    asr_warmup_audio: Path | None = Field(
        None, description="A WAV of speech to warm decoders on, ideally in the model's language; bundled if unset."
    )
    vosk_sample_rate: Literal[8000, 16000] = Field(
        16000, description="Rate vosk is fed at: 16000 (the models' own) or 8000 (the phone's, not resampled)."
    )
    vosk_model_path: Path | None = Field(
        None, description="Folder of an unpacked vosk model; if unset, the model cache folder is searched."
    )
    model_cache_dir: Path = Field(DEFAULT_CACHE_DIR, description="Where `handoff models fetch` puts models.")
    vosk_model_name: str = Field(DEFAULT_MODEL_NAME, description="Name of the vosk model folder in the cache.")
    vosk_model_url: str = Field(DEFAULT_MODEL_URL, description="Where `handoff models fetch` downloads from.")
    vosk_model_sha256: str | None = Field(
        DEFAULT_MODEL_SHA256, description="SHA-256 the downloaded model archive must have."
    )
    tts_voice: str | None = Field(
        None, description="pyttsx3 voice id (espeak-ng: e.g. gmw/en-us); default voice if unset."
    )
    tts_rate: int = Field(175, ge=80, le=400, description="Speaking rate of the bot, in words a minute.")
    tts_cache_dir: Path = Field(
        Path.home() / ".cache" / "handoff" / "tts", description="Disk cache of synthesised prompts."
    )
    vad_aggressiveness: int = Field(
        2, ge=0, le=3, description="webrtcvad mode: 0 hears the most as speech, 3 the least."
    )
    end_of_speech_ms: int = Field(600, ge=20, le=5000, description="Silence that ends a caller's utterance.")
    min_speech_ms: int = Field(200, ge=0, le=5000, description="Voiced bursts shorter than this are noise.")
    start_speech_ms: int = Field(60, ge=20, le=1000, description="Voiced run that opens an utterance.")
    barge_in_ms: int = Field(200, ge=20, le=2000, description="Caller speech over the bot that cuts the bot off.")
    no_input_timeout_ms: int = Field(
        7000,
        ge=1000,
        le=60000,
        description="Silence after the bot finishes speaking that counts as no input.",
    )
    max_message_bytes: int = Field(64000, ge=1024, description="Largest media-stream message accepted.")
    media_read_batch: int = Field(
        10,
        ge=1,
        le=MAX_READ_BATCH,
        description="Media messages a stream's socket gathers before the server reads them (each read costs about "
        "as much CPU as the message it carries): 10 saves nine reads in ten, for at most 180 ms more delay on the "
        "other frames (the start of a caller's voice, a DTMF key, a mark); 1 reads each at once. The frames that may "
        "end a caller's utterance, and the caller's voice over the bot, are always read at once, so neither replies "
        "nor barge-ins wait.",
    )
    data_dir: Path = Field(Path("data"), description="Folder for the database and call records.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL (postgresql+psycopg://...); a SQLite file in the data folder if unset."
    )
    rest_transfers: bool = Field(
        True, description="Move live calls with Twilio's REST API (falls back to <Connect action> on failure)."
    )
    webhook_urls: list[str] = Field(
        default_factory=list, description="Help-desk/CRM URLs each handoff package is POSTed to (JSON list)."
    )
    webhook_secret: SecretStr = Field(SecretStr(""), description="Key of the X-Handoff-Signature HMAC-SHA256.")
    availability: Literal["schedule", "taskrouter"] = Field(
        "schedule", description="How queue availability is checked: the configured hours, or TaskRouter statistics."
    )
    taskrouter_workspace_sid: str | None = Field(None, description="TaskRouter workspace for availability checks.")
    callback_dialer: bool = Field(False, description="Place due callbacks automatically (agent first, then caller).")
    callback_from: str | None = Field(None, description="Caller ID for callbacks (a Twilio number).")
    fixed_now: datetime | None = Field(
        None, description="Pretend it is this time (ISO 8601) for hours and callbacks: replays and tests only."
    )
    jobs: Literal["in_process", "queue"] = Field(
        "in_process",
        description="Background work (help-desk deliveries, the callback dialer): in_process, each server runs it "
        "(SQLite, or one instance); queue, it goes on PostgreSQL's job queue (procrastinate), run by `handoff worker`.",
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="Delete calls older than this many days, with everything they left (unset: keep them all).",
    )
    drain_grace_s: float = Field(
        10.0, ge=0, le=3600, description="On SIGTERM: how long live calls may go on before they are handed on."
    )
    drain_timeout_s: float = Field(
        20.0, ge=1, le=3600, description="On SIGTERM: how long to wait for handed-on calls' streams to close."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Server log level.")

    @field_validator("public_url", "twilio_api_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with https:// (or http:// for local tests), got {value!r}")
        if not urlsplit(value).netloc:
            raise ValueError(f"must name a host, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _queue_needs_postgres(self) -> Settings:
        if self.jobs == "queue" and not (self.database_url or "").startswith("postgresql"):
            raise ValueError("HANDOFF_JOBS=queue needs HANDOFF_DATABASE_URL on PostgreSQL (the job queue lives there)")
        return self


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one SettingsError that names each variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else str(err["msg"]).removeprefix("Value error, ")  # a rule across settings names them itself
            for err in exc.errors(include_url=False)
        ]
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


def settings_table() -> str:
    """The README's configuration table, in Markdown."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, SecretStr):
            default = ""
        if isinstance(default, Path) and str(default).startswith(str(Path.home())):
            default = "~" + str(default)[len(str(Path.home())) :]
        shown = "(unset)" if default in (None, "", []) else f"`{default}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {info.description} |")
    return "\n".join(rows)
