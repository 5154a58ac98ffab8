"""What a running server is made of, built once from the settings before it starts serving.

Building can fail (no vosk model, espeak-ng missing); it happens before the server binds, so the
failure is one clear sentence rather than a traceback from inside a request.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from dialogs.dialog import DialogFactory
from dialogs.manager import DialogManagerFactory
from dialogs.pack import load_pack
from dialogs.tools import DataTools, ToolBox
from telephony.records import CallRegistry
from telephony.security import ApiTokenCheck, TwilioSignatureCheck
from telephony.session import SessionConfig, Synthesizer
from telephony.settings import Settings
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

    def close(self) -> None:
        self.stt_executor.shutdown(wait=False, cancel_futures=True)
        close = getattr(self.synthesizer, "close", None)
        if callable(close):
            close()


def build_services(
    settings: Settings,
    *,
    recognizers: RecognizerFactory | None = None,
    synthesizer: Synthesizer | None = None,
    dialogs: DialogFactory | None = None,
    tools: ToolBox | None = None,
) -> Services:
    """Assemble the server's parts.

    Raises ModelNotFound when vosk is asked for and no model is there, BotPackError for a bad bot pack.
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
    return Services(
        settings=settings,
        registry=CallRegistry(),
        recognizers=recognizers,
        synthesizer=synthesizer
        or SpeechSynthesizer(settings.tts_cache_dir, voice=settings.tts_voice, rate=settings.tts_rate),
        dialogs=dialogs or DialogManagerFactory(load_pack(settings.bot_pack)),
        tools=tools or DataTools(),
        signatures=TwilioSignatureCheck(
            settings.twilio_auth_token.get_secret_value(), enabled=settings.validate_signatures
        ),
        api_token=ApiTokenCheck(settings.api_token.get_secret_value()),
        stt_executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="stt"),
        session_config=SessionConfig(
            vad=vad,
            no_input_timeout_ms=settings.no_input_timeout_ms,
            max_message_bytes=settings.max_message_bytes,
        ),
    )
