"""What a session is asked to do, one frozen value per concern.

The person's choices (routine, voice, listening), the devices it plays and hears on, and what it
writes out are separate: a caller states each, the command line merges them with the config file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from voicecoach.routine import Routine
from voicecoach.speech import VoiceSettings


@dataclass(frozen=True)
class PersonSettings:
    """The person's choices: which routine, how the coach sounds, whether and how it listens."""

    routine: Optional[Path] = None      # None: the built-in hamstring stretch
    voice: Optional[str] = None
    rate: Optional[int] = None
    volume: Optional[float] = None
    listen: bool = True                 # False: voice stop is off (said at the start)
    engine: str = "auto"                # hearing.ENGINES

    def voice_for(self, routine: Routine) -> VoiceSettings:
        """These settings over the routine file's over the speech engine's defaults."""
        v = routine.voice
        return VoiceSettings(voice=self.voice or v.voice, rate=self.rate or v.rate,
                             volume=self.volume if self.volume is not None else v.volume)


@dataclass(frozen=True)
class DeviceSettings:
    """Where the coach plays and hears: sound devices by name or index, WAV files, or text."""

    mic: Optional[str] = None
    speaker: Optional[str] = None
    mic_file: Optional[Path] = None       # read as the microphone, then silence
    speaker_file: Optional[Path] = None   # what is played, written as fast as it goes
    echo_db: Optional[float] = None       # with files: the speaker heard by the microphone at this level
    text: bool = False                    # cues printed with their times; typed lines are heard words

    @property
    def files(self) -> bool:
        return self.mic_file is not None or self.speaker_file is not None


@dataclass(frozen=True)
class OutputSettings:
    """What a session writes besides the sound: the history, a timeline, the speech cache."""

    db: Optional[Path] = None             # None: paths.history_file()
    timeline: Optional[Path] = None       # JSON lines of what was played and heard, with times
    cache_dir: Optional[Path] = None      # None: paths.speech_cache()
