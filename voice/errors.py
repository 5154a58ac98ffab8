"""Errors raised by the voice layer.

Hierarchy::

    VoiceError
    ├── AudioFormatError      audio that is not what a caller's line or an engine needs
    ├── ModelNotFound         no speech-recognition model on disk; the message says how to get one
    ├── ModelFetchError       downloading or verifying a model failed
    └── SynthesisError        the text-to-speech engine could not speak a prompt
"""

from __future__ import annotations


class VoiceError(Exception):
    """Base of every error the voice layer raises, so callers can catch the layer as a whole."""


class AudioFormatError(VoiceError):
    """Audio arrived in a format we cannot use; the message names the source and what was wrong."""


class ModelNotFound(VoiceError):
    """No vosk model could be found; the message is one sentence telling how to get one."""


class ModelFetchError(VoiceError):
    """A model download failed or its checksum did not match."""


class SynthesisError(VoiceError):
    """The TTS engine failed to produce audio for a prompt."""
