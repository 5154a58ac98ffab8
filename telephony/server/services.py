"""What a running server is made of, built once from the settings before it starts serving.

Building can fail (no vosk model, espeak-ng missing, a bad bot pack, a database that cannot be migrated);
it happens before the server binds, so the failure is one clear sentence rather than a traceback from
inside a request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from dialogs.dialog import DialogFactory
from dialogs.manager import DialogManagerFactory
from dialogs.pack import BotPack, load_pack
from dialogs.routing import Availability, Router, ScheduleAvailability
from dialogs.tools import ToolBox, load_toolbox
from telephony.calls.admission import StreamTickets, ticket_secret
from telephony.calls.metrics import Metrics
from telephony.calls.ports import SessionConfig, SessionDeps, Synthesizer
from telephony.calls.registry import CallRegistry, LiveStreams
from telephony.calls.session import CallSession
from telephony.desk.callbacks import Callbacks
from telephony.desk.delivery import HandoffDeliverer
from telephony.desk.desk import HandoffDesk
from telephony.desk.dialer import CallbackDialer
from telephony.desk.ledger import Ledger
from telephony.desk.outbox import Outbox
from telephony.desk.targets import TransferConfig
from telephony.desk.transfers import Transfers
from telephony.desk.upkeep import Upkeep
from telephony.desk.voicemail import Voicemails
from telephony.server.auth import ApiTokenCheck
from telephony.server.console.accounts import ConsoleAuth
from telephony.server.console.watch import QueueWatch
from telephony.server.settings import Settings
from telephony.store import Store, sqlite_url
from telephony.store.notices import Notice
from telephony.twilio.rest import TwilioRest
from telephony.twilio.signatures import TwilioSignatureCheck
from telephony.twilio.taskrouter import TaskRouterAvailability
from voice.asr_host import warmup_speech
from voice.asr_pool import PooledRecognition
from voice.models import locate_model
from voice.oracle import OracleRecognizerFactory
from voice.recognition import LocalRecognition, RecognitionService
from voice.stt import RecognizerFactory
from voice.tts import SpeechSynthesizer
from voice.vad import VadConfig

log = logging.getLogger(__name__)

EXECUTOR_THREADS = 8  # tools, routing and in-process recognition, off the event loop


def oracle_of(recognition: RecognitionService) -> OracleRecognizerFactory | None:
    """The oracle ASR script keeper behind `recognition`, if it is oracle ASR (tests and replays)."""
    if isinstance(recognition, LocalRecognition) and isinstance(recognition.factory, OracleRecognizerFactory):
        return recognition.factory
    return None


@dataclass
class Services:
    """Everything the routes use; one per server process."""

    settings: Settings
    pack: BotPack
    registry: CallRegistry
    streams: LiveStreams[CallSession]
    recognition: RecognitionService
    synthesizer: Synthesizer
    dialogs: DialogFactory
    tools: ToolBox
    signatures: TwilioSignatureCheck
    api_token: ApiTokenCheck
    executor: ThreadPoolExecutor
    session_config: SessionConfig
    router: Router
    availability: Availability
    store: Store
    rest: TwilioRest | None
    deliverer: HandoffDeliverer | None
    desk: HandoffDesk
    clock: Callable[[], datetime]
    tickets: StreamTickets
    upkeep: Upkeep
    console_auth: ConsoleAuth
    queue_watch: QueueWatch
    metrics: Metrics
    dialer: CallbackDialer | None = None
    draining: bool = False  # SIGTERM: no new streams; live calls are finishing or being handed on

    async def start(self) -> None:
        """Before the first call: say loudly what is unsafe, and synthesise every fixed prompt."""
        settings = self.settings
        if not settings.validate_signatures:
            log.warning(
                "!!! X-Twilio-Signature checking is OFF (HANDOFF_VALIDATE_SIGNATURES=false): anyone who can "
                "reach this server can pose as Twilio. Never run like this in production. !!!"
            )
        elif not settings.twilio_auth_token.get_secret_value():
            log.warning("HANDOFF_TWILIO_AUTH_TOKEN is empty: every Twilio request will be refused with 403")
        await self.upkeep.start()
        await self.recognition.start()
        prompts = list(self.dialogs.fixed_prompts())
        await self.synthesizer.warm(prompts)
        log.info("synthesised %d fixed prompts", len(prompts))

    def heard(self, notice: Notice) -> None:
        """Word from another instance about a call (LISTEN/NOTIFY): whoever here can use it."""
        self.desk.transfers.conference.heard(notice)

    def session_deps(self) -> SessionDeps:
        """What a new call's session shares with every other call on this server."""
        return SessionDeps(
            recognition=self.recognition,
            synthesizer=self.synthesizer,
            dialogs=self.dialogs,
            registry=self.registry,
            streams=self.streams,
            executor=self.executor,
            tools=self.tools,
            router=self.router,
            availability=self.availability,
            clock=self.clock,
            desk=self.desk,
            caller_profile=self.pack.caller_profile,
            tickets=self.tickets,
            metrics=self.metrics,
        )

    async def aclose(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.aclose()
        await self.desk.ledger.outbox.aclose()
        await self.recognition.aclose()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.synthesizer.close()
        if self.rest is not None:
            self.rest.close()
        self.store.close()


def build_services(
    settings: Settings,
    *,
    recognizers: RecognizerFactory | None = None,
    recognition: RecognitionService | None = None,
    synthesizer: Synthesizer | None = None,
    dialogs: DialogFactory | None = None,
    tools: ToolBox | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Services:
    """Assemble the server's parts.

    Raises ModelNotFound when vosk is asked for and no model is there, BotPackError for a bad bot pack,
    StoreError when the database cannot be opened or migrated.
    """
    executor = ThreadPoolExecutor(max_workers=EXECUTOR_THREADS, thread_name_prefix="handoff")
    if recognition is None:
        recognition = _recognition(settings, recognizers, executor)
    if oracle_of(recognition) is not None:
        log.warning("speech recognition is ORACLE ASR (scripted reference text): for tests and replays only")
    pack = load_pack(settings.bot_pack)
    clock = clock or _clock(settings.fixed_now)
    queued = settings.jobs == "queue"  # deliveries and callbacks go to `handoff worker` through PostgreSQL
    store = Store(settings.database_url or sqlite_url(settings.data_dir), clock=clock, queue_jobs=queued)
    store.migrate()
    auth_token = settings.twilio_auth_token.get_secret_value()
    rest = (
        TwilioRest(settings.twilio_account_sid, auth_token, settings.twilio_api_base_url)
        if auth_token and settings.rest_transfers
        else None
    )
    metrics = Metrics()
    outbox = Outbox(settings.data_dir / "outbox", metrics=metrics)
    deliverer = _deliverer(settings, store, outbox)
    registry = CallRegistry()
    streams: LiveStreams[CallSession] = LiveStreams()
    ledger = Ledger(registry, store, outbox, streaming_here=lambda call_sid: streams.get(call_sid) is not None)
    return Services(
        settings=settings,
        pack=pack,
        registry=registry,
        streams=streams,
        recognition=recognition,
        synthesizer=synthesizer
        or SpeechSynthesizer(
            settings.tts_cache_dir, voice=settings.tts_voice or pack.recognition.tts_voice, rate=settings.tts_rate
        ),
        dialogs=dialogs or DialogManagerFactory(pack),
        tools=tools or load_toolbox(pack.toolbox, pack.source, set(pack.tools)),
        signatures=TwilioSignatureCheck(auth_token, enabled=settings.validate_signatures),
        api_token=ApiTokenCheck(settings.api_token.get_secret_value()),
        executor=executor,
        session_config=_session_config(settings),
        router=Router(list(pack.queues), list(pack.routing_rules), pack.default_queue),
        availability=_availability(settings, rest),
        store=store,
        rest=rest,
        deliverer=deliverer,
        desk=_desk(settings, pack, ledger, rest, deliverer, recognition, clock),
        clock=clock,
        tickets=StreamTickets(ticket_secret(auth_token)),
        upkeep=Upkeep(
            ledger,
            None if queued else deliverer,
            live=lambda sid: streams.get(sid) is not None,
            retention_days=None if queued else settings.retention_days,  # queued: the worker's hourly job
        ),
        console_auth=ConsoleAuth(store),
        queue_watch=QueueWatch(store),
        metrics=metrics,
        dialer=_dialer(settings, pack, store, rest, clock),
    )


def _recognition(
    settings: Settings, recognizers: RecognizerFactory | None, executor: ThreadPoolExecutor
) -> RecognitionService:
    """vosk in worker processes (the model is found now; it loads when the server starts), or oracle ASR."""
    if recognizers is not None:
        return LocalRecognition(recognizers, executor)
    if settings.asr == "vosk":
        model = locate_model(settings.vosk_model_path, settings.model_cache_dir, settings.vosk_model_name)
        if settings.asr_warmup_audio is not None:
            warmup_speech(settings.asr_warmup_audio)  # a bad recording stops start-up with its name
        return PooledRecognition(
            model,
            settings.asr_workers,
            settings.vosk_sample_rate,
            prewarm=settings.asr_prewarm,
            warmup_audio=settings.asr_warmup_audio,
        )
    return LocalRecognition(OracleRecognizerFactory(), executor, inline=True)  # a script lookup: no thread hop


def _clock(fixed: datetime | None) -> Callable[[], datetime]:
    def clock() -> datetime:
        return fixed if fixed is not None else datetime.now(UTC)

    return clock


def _session_config(settings: Settings) -> SessionConfig:
    vad = VadConfig(
        aggressiveness=settings.vad_aggressiveness,
        end_of_speech_ms=settings.end_of_speech_ms,
        min_speech_ms=settings.min_speech_ms,
        start_speech_ms=settings.start_speech_ms,
        barge_in_ms=settings.barge_in_ms,
    )
    return SessionConfig(
        vad=vad, no_input_timeout_ms=settings.no_input_timeout_ms, max_message_bytes=settings.max_message_bytes
    )


def _availability(settings: Settings, rest: TwilioRest | None) -> Availability:
    if settings.availability == "taskrouter" and rest is not None and settings.taskrouter_workspace_sid:
        return TaskRouterAvailability(rest, settings.taskrouter_workspace_sid)
    return ScheduleAvailability()


def _deliverer(settings: Settings, store: Store, outbox: Outbox) -> HandoffDeliverer | None:
    if not settings.webhook_urls:
        return None
    secret = settings.webhook_secret.get_secret_value()
    if not secret:
        log.warning("HANDOFF_WEBHOOK_URLS is set but HANDOFF_WEBHOOK_SECRET is empty: deliveries are off")
        return None
    queued = settings.jobs == "queue"  # then this process records deliveries; a worker sends them
    return HandoffDeliverer(
        settings.webhook_urls, secret, store, outbox=None if queued else outbox, send_now=not queued
    )


def _desk(
    settings: Settings,
    pack: BotPack,
    ledger: Ledger,
    rest: TwilioRest | None,
    deliverer: HandoffDeliverer | None,
    recognition: RecognitionService,
    clock: Callable[[], datetime],
) -> HandoffDesk:
    config = TransferConfig(
        settings.transfer_number, settings.transfer_caller_id, settings.transfer_timeout_s,
        conference=settings.transfer_mode == "conference",
    )  # fmt: skip
    callbacks = Callbacks(ledger, pack, clock)
    transcriber = recognition if recognition.name == "vosk" else None  # voicemail text, with the same model
    return HandoffDesk(
        ledger,
        pack,
        Transfers(ledger, pack, config, callbacks, rest),
        callbacks,
        Voicemails(ledger, pack, callbacks, rest, transcriber),
        deliverer,
    )


def _dialer(
    settings: Settings, pack: BotPack, store: Store, rest: TwilioRest | None, clock: Callable[[], datetime]
) -> CallbackDialer | None:
    if not settings.callback_dialer:
        return None
    if rest is None or not settings.public_url or not settings.callback_from:
        log.warning(
            "HANDOFF_CALLBACK_DIALER needs Twilio credentials, HANDOFF_PUBLIC_URL and "
            "HANDOFF_CALLBACK_FROM; callbacks will wait for an agent instead"
        )
        return None
    return CallbackDialer(
        store,
        rest,
        settings.public_url,
        caller_id=settings.callback_from,
        default_agent=settings.transfer_number,
        pack=pack,
        clock=clock,
    )
