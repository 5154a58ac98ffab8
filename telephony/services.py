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
from dialogs.tools import DataTools, ToolBox
from telephony.availability import TaskRouterAvailability
from telephony.delivery import HandoffDeliverer
from telephony.desk import HandoffDesk
from telephony.dialer import CallbackDialer
from telephony.records import CallRegistry
from telephony.rest import TwilioRest
from telephony.security import ApiTokenCheck, TwilioSignatureCheck
from telephony.session import SessionConfig, Synthesizer
from telephony.settings import Settings
from telephony.store import Store, sqlite_url
from voice.stt import OracleRecognizerFactory, RecognizerFactory, build_recognizer_factory
from voice.tts import SpeechSynthesizer
from voice.vad import VadConfig

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything the routes use; one per server process."""

    settings: Settings
    registry: CallRegistry
    recognizers: RecognizerFactory
    synthesizer: Synthesizer
    dialogs: DialogFactory
    tools: ToolBox
    signatures: TwilioSignatureCheck
    api_token: ApiTokenCheck
    stt_executor: ThreadPoolExecutor
    session_config: SessionConfig
    pack: BotPack
    router: Router
    availability: Availability
    store: Store
    rest: TwilioRest | None
    deliverer: HandoffDeliverer | None
    desk: HandoffDesk
    clock: Callable[[], datetime]
    dialer: CallbackDialer | None = None

    async def aclose(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.aclose()
        self.stt_executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.synthesizer, "close", None)
        if callable(close):
            close()
        if self.rest is not None:
            self.rest.close()
        self.store.close()


def build_services(
    settings: Settings,
    *,
    recognizers: RecognizerFactory | None = None,
    synthesizer: Synthesizer | None = None,
    dialogs: DialogFactory | None = None,
    tools: ToolBox | None = None,
) -> Services:
    """Assemble the server's parts.

    Raises ModelNotFound when vosk is asked for and no model is there, BotPackError for a bad bot pack,
    StoreError when the database cannot be opened or migrated.
    """
    if recognizers is None:
        recognizers = build_recognizer_factory(
            settings.asr, settings.vosk_model_path, settings.model_cache_dir, settings.vosk_model_name
        )
    if isinstance(recognizers, OracleRecognizerFactory):
        log.warning("speech recognition is ORACLE ASR (scripted reference text): for tests and replays only")
    vad = VadConfig(
        aggressiveness=settings.vad_aggressiveness,
        end_of_speech_ms=settings.end_of_speech_ms,
        min_speech_ms=settings.min_speech_ms,
        start_speech_ms=settings.start_speech_ms,
        barge_in_ms=settings.barge_in_ms,
    )
    pack = load_pack(settings.bot_pack)
    store = Store(settings.database_url or sqlite_url(settings.data_dir))
    store.migrate()
    auth_token = settings.twilio_auth_token.get_secret_value()
    rest = (
        TwilioRest(settings.twilio_account_sid, auth_token, settings.twilio_api_base_url)
        if auth_token and settings.rest_transfers
        else None
    )
    availability: Availability = ScheduleAvailability()
    if settings.availability == "taskrouter" and rest is not None and settings.taskrouter_workspace_sid:
        availability = TaskRouterAvailability(rest, settings.taskrouter_workspace_sid)
    deliverer = None
    if settings.webhook_urls:
        secret = settings.webhook_secret.get_secret_value()
        if not secret:
            log.warning("HANDOFF_WEBHOOK_URLS is set but HANDOFF_WEBHOOK_SECRET is empty: deliveries are off")
        else:
            deliverer = HandoffDeliverer(settings.webhook_urls, secret, store)
    fixed = settings.fixed_now

    def clock() -> datetime:
        return fixed if fixed is not None else datetime.now(UTC)

    dialer = None
    if settings.callback_dialer:
        if rest is None or not settings.public_url or not settings.callback_from:
            log.warning(
                "HANDOFF_CALLBACK_DIALER needs Twilio credentials, HANDOFF_PUBLIC_URL and "
                "HANDOFF_CALLBACK_FROM; callbacks will wait for an agent instead"
            )
        else:
            dialer = CallbackDialer(
                store,
                rest,
                settings.public_url,
                caller_id=settings.callback_from,
                default_agent=settings.transfer_number,
                queues={q.name: q for q in pack.queues},
                company=pack.company,
                clock=clock,
            )
    registry = CallRegistry()
    desk = HandoffDesk(settings, registry, list(pack.queues), store=store, rest=rest, deliverer=deliverer, clock=clock)
    if recognizers.name == "vosk":  # voicemails are transcribed offline with the same model
        desk.transcriber = recognizers
    return Services(
        settings=settings,
        registry=registry,
        recognizers=recognizers,
        synthesizer=synthesizer
        or SpeechSynthesizer(settings.tts_cache_dir, voice=settings.tts_voice, rate=settings.tts_rate),
        dialogs=dialogs or DialogManagerFactory(pack),
        tools=tools or DataTools(),
        signatures=TwilioSignatureCheck(auth_token, enabled=settings.validate_signatures),
        api_token=ApiTokenCheck(settings.api_token.get_secret_value()),
        stt_executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="stt"),
        session_config=SessionConfig(
            vad=vad, no_input_timeout_ms=settings.no_input_timeout_ms, max_message_bytes=settings.max_message_bytes
        ),
        pack=pack,
        router=Router(list(pack.queues), list(pack.routing_rules), pack.default_queue),
        availability=availability,
        store=store,
        rest=rest,
        deliverer=deliverer,
        desk=desk,
        clock=clock,
        dialer=dialer,
    )
