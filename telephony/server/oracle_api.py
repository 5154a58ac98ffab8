"""Oracle ASR's one route: a replay scripts what the caller on a coming call will say.

Mounted only when the server recognises speech with oracle ASR (tests and replays); a vosk server has no
such route at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from telephony.server.http import require_token, services_of
from telephony.server.services import oracle_of
from voice.oracle import OracleUtterance

router = APIRouter(prefix="/api", dependencies=[Depends(require_token)])


class OracleLine(BaseModel):
    text: str
    confidence: float = Field(1.0, ge=0.0, le=1.0)


class OracleScript(BaseModel):
    """The reference transcript of a replayed call, for oracle ASR."""

    utterances: list[OracleLine]
    wer: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = None
    noise_key: str | None = None


@router.post(
    "/oracle/{call_sid}",
    summary="Oracle ASR only: script what the caller on a coming call will say (replays and tests)",
)
async def register_oracle_script(request: Request, call_sid: str, script: OracleScript) -> dict[str, Any]:
    recognition = services_of(request).recognition
    factory = oracle_of(recognition)
    if factory is None:
        detail = f"this server recognises speech with {recognition.name}, not oracle ASR"
        raise HTTPException(status_code=409, detail=detail)
    factory.register(
        call_sid,
        [OracleUtterance(u.text, u.confidence) for u in script.utterances],
        wer=script.wer,
        seed=script.seed,
        noise_key=script.noise_key,
    )
    return {"call_sid": call_sid, "utterances": len(script.utterances)}
