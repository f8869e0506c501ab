"""`voicecoach doctor`'s speaker-in-the-microphone verdict on recorded arrays (no sound server):
the coach's real chime and test line as played, and what a microphone beside the speaker made of
them. The live check through PulseAudio loopbacks is in test_doctor.py."""

from __future__ import annotations

import io

import numpy as np

from voicecoach import doctor
from voicecoach.audio import RATE
from voicecoach.speech import Voice, VoiceSettings, earcon


def verdict(echo_db: float, saturate: bool = False, person_rms: float = 1000.0) -> str:
    """The doctor's line for the coach's sound heard 25 ms late at `echo_db` (clipped as a 16-bit
    microphone clips; `saturate`: hard-limited to full scale, as an overdriven analog input)."""
    rng = np.random.default_rng(0)
    played = np.concatenate([earcon("start"), np.zeros(RATE // 4, np.int16),
                             Voice(VoiceSettings()).render(doctor.TEST_LINE).samples])
    echo = np.concatenate([np.zeros(400), played.astype(np.float64) * 10 ** (echo_db / 20), np.zeros(4800)])
    if saturate:
        echo = np.sign(echo) * 32767 * (np.abs(echo) > 1)
    heard = np.clip(echo + rng.normal(0, 30, len(echo)), -32768, 32767).astype(np.int16)
    voice = rng.normal(0, person_rms, RATE).astype(np.int16)
    out = io.StringIO()
    doctor.check_coupling(doctor.Report(out), (played, heard), voice)
    return out.getvalue()


def test_a_speaker_quieter_than_the_person_passes() -> None:
    line = verdict(-30.0)
    assert line.startswith("PASS  speaker in the microphone: the coach's voice reaches it") and "under yours" in line


def test_a_speaker_far_louder_than_the_person_fails_on_its_level_though_it_clips_a_little() -> None:
    line = verdict(10.0)
    assert line.startswith("FAIL  speaker in the microphone:") and "louder than yours" in line, line
    assert "clipped" in line and "move it away from the microphone" in line


def test_an_overdriven_microphone_fails_on_its_clipping() -> None:
    """Hard-limited, the echo is a square wave: the canceller fits its path on the few samples
    left unclipped and sizes it far too small, so the clipping itself is the verdict."""
    for line in (verdict(0.0, saturate=True), verdict(30.0)):
        assert line.startswith("FAIL  speaker in the microphone: the microphone clips while the speaker plays"), line


def test_a_speaker_not_heard_passes() -> None:
    assert verdict(-90.0).startswith("PASS  speaker in the microphone: the coach's voice is not heard")
