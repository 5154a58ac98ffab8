"""Voicemail: the caller's message, stored with their package, and turned into text offline when the server
has a vosk model. No message left means a callback instead: the package is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

from dialogs.pack import BotPack
from telephony.calls.records import VoicemailNote
from telephony.desk.callbacks import Callbacks
from telephony.desk.ledger import Ledger
from telephony.twilio import twiml
from telephony.twilio.errors import TransferError
from telephony.twilio.rest import TwilioRest
from voice.codec import SAMPLE_RATE, resample_pcm16
from voice.errors import VoiceError
from voice.recognition import Audio, FinishUtterance, Heard, RecognitionService, StartUtterance
from voice.vad import SpeechEnded
from voice.wavfile import read_pcm16_wav

log = logging.getLogger(__name__)


class Voicemails:
    """The two Twilio callbacks of a recorded message: the `<Record action>` and the recording status."""

    def __init__(
        self,
        ledger: Ledger,
        pack: BotPack,
        callbacks: Callbacks,
        rest: TwilioRest | None,
        transcriber: RecognitionService | None = None,
    ) -> None:
        self.ledger = ledger
        self.pack = pack
        self.callbacks = callbacks
        self.rest = rest
        self.transcriber = transcriber  # the server's speech recognition, when it really recognises (vosk)

    async def message(self, call_sid: str, form: Mapping[str, str]) -> str:
        """The caller finished (or left no) message: store it, or promise a callback instead."""
        record = await self.ledger.find(call_sid) or self.ledger.open(call_sid)
        words = self.pack.after_stream
        decision = record.decision
        package = decision.package if decision else None
        duration = seconds(form.get("RecordingDuration"))
        url = form.get("RecordingUrl")
        if duration <= 0 or url is None:
            await self.callbacks.request(record, record.caller, None, package, note="no voicemail was left")
            await self.ledger.save(record)
            return twiml.say_and_hang_up(words.no_message, self.pack.say_language)
        note = record.progress.voicemail or VoicemailNote()
        record.progress.voicemail = note.model_copy(update={"url": url, "duration_s": duration})
        handoff_id = package.handoff_id if package else None
        if self.ledger.store is not None:
            await self.ledger.write(
                call_sid, self.ledger.store.save_voicemail, call_sid, handoff_id, recording_url=url, duration_s=duration
            )
        await self.ledger.set_handoff_status(handoff_id, "voicemail")
        await self.ledger.save(record)
        return twiml.say_and_hang_up(words.voicemail_thanks, self.pack.say_language)

    async def recording_ready(self, call_sid: str, form: Mapping[str, str]) -> None:
        """The recording is ready: store its SID, URL and duration; with a vosk model, add its text."""
        record = await self.ledger.find(call_sid) or self.ledger.open(call_sid)
        decision = record.decision
        handoff_id = decision.package.handoff_id if decision and decision.package else None
        recording_sid = form.get("RecordingSid") or None
        url = form.get("RecordingUrl")
        duration = seconds(form.get("RecordingDuration"))
        note = (record.progress.voicemail or VoicemailNote()).model_copy(
            update={"recording_sid": recording_sid, "url": url, "duration_s": duration}
        )
        record.progress.voicemail = note
        store = self.ledger.store
        if store is not None:
            await self.ledger.write(
                call_sid,
                store.save_voicemail,
                call_sid,
                handoff_id,
                recording_sid=recording_sid,
                recording_url=url,
                duration_s=duration,
            )
        queued = store is not None and store.queue_jobs  # then a worker transcribes it (its job came with the row)
        if self.transcriber is not None and self.rest is not None and url and not queued:
            text = await self.transcribe_recording(url, recording_sid or call_sid)
            if text:
                record.progress.voicemail = note.model_copy(update={"transcript": text})
                if store is not None:
                    await self.ledger.write(
                        call_sid,
                        store.save_voicemail,
                        call_sid,
                        handoff_id,
                        recording_sid=recording_sid,
                        transcript=text,
                    )

    @property
    def can_transcribe(self) -> bool:
        return self.rest is not None and self.transcriber is not None

    async def transcribe_recording(self, url: str, key: str) -> str | None:
        """Fetch the recording and transcribe it offline; a failure leaves the voicemail without text."""
        if self.rest is None or self.transcriber is None:
            return None
        try:
            wav = await asyncio.to_thread(self.rest.fetch_recording, url)
            pcm = await asyncio.to_thread(phone_pcm, wav)
            return await transcribe(self.transcriber, pcm, key)
        except (TransferError, VoiceError, OSError) as exc:
            log.warning("could not transcribe voicemail %s: %s", key, exc)
            return None


def seconds(value: str | None) -> int:
    """A duration Twilio sends as text; anything unreadable is 0 (never a traceback), and at most a day."""
    text = (value or "0").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return 0
    return min(int(text), 24 * 3600)


def phone_pcm(wav: bytes) -> bytes:
    """A WAV recording (any rate, PCM16) as 8 kHz PCM16, the rate every recogniser here is fed. Blocking."""
    with tempfile.TemporaryDirectory(prefix="handoff-voicemail-") as folder:
        path = Path(folder) / "message.wav"
        path.write_bytes(wav)
        pcm, rate = read_pcm16_wav(path)
    return resample_pcm16(pcm, rate, SAMPLE_RATE)


async def transcribe(recognition: RecognitionService, pcm: bytes, key: str) -> str | None:
    """The words in 8 kHz PCM16 audio, recognised as one utterance, or None when nothing was recognised."""
    end_ms = len(pcm) * 1000 // (SAMPLE_RATE * 2)
    call = await recognition.open(key)
    try:
        results = await call.run(
            [StartUtterance(0), Audio(bytearray(pcm)), FinishUtterance(SpeechEnded(0, end_ms, end_ms), 0.0)]
        )
    finally:
        await call.close()
    finals = [r.transcript for r in results if isinstance(r, Heard)]
    return finals[0].text if finals and finals[0] is not None and finals[0].text else None
