"""The hearing on real audio: real people, real pocketsphinx, espeak-ng positives."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio import RATE, read_wav, resample, write_wav
from voicecoach.hearing.engines import make_spotter
from voicecoach.hearing.words import ACTIONS, Detection, Keyword, default_keywords, spot_file

CLIPS = Path(__file__).parent / "data" / "speech" / "listening"
NEGATIVES = sorted(p for p in CLIPS.glob("*.wav") if not p.name.startswith("stop-"))


@pytest.fixture(scope="module")
def spotter():
    return make_spotter(default_keywords())


def hear(path: Path, spotter) -> list[Detection]:
    spotter.reset()
    return list(spot_file(path, spotter))


def speech_end(path: Path) -> float:
    """Last 10 ms frame louder than -40 dBFS: where the word ends."""
    x = read_wav(path).astype(np.float64)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > 32768 * 10 ** (-40 / 20))
    return (loud[-1] + 1) * 160 / RATE


def test_default_keywords_cover_every_action():
    assert {k.action for k in default_keywords()} == set(ACTIONS)


@pytest.mark.sphinx
def test_default_keywords_are_in_the_pocketsphinx_dictionary():
    from voicecoach.hearing.sphinx import unknown_words
    assert unknown_words(k.phrase for k in default_keywords()) == []


def test_person_saying_stop_is_one_stop_near_the_word_end(spotter):
    clip = CLIPS / "stop-439c84f4_nohash_1.wav"
    found = hear(clip, spotter)
    assert [d.action for d in found] == ["stop"]
    assert abs(found[0].t - speech_end(clip)) < 0.25
    assert found[0].start < found[0].t


@pytest.mark.parametrize("clip", NEGATIVES, ids=lambda p: p.stem)
def test_people_counting_and_other_words_never_stop_the_session(spotter, clip):
    assert [d for d in hear(clip, spotter) if d.action in ("safety", "stop")] == []


VOICES = [(v, r) for v in ("en-us", "en", "en-gb-x-rp", "en+m3", "en-us+f2", "en+f4") for r in (120, 150)]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
@pytest.mark.parametrize("word", ["pain", "numb"])
def test_synthetic_safety_word_is_heard_in_many_voices(spotter, tmp_path, word):
    """espeak voices are heard worse than people (docs/benchmarks.md): a floor, not the goal."""
    rng = np.random.default_rng(0)
    heard = 0
    for voice, rate in VOICES:
        raw = tmp_path / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), word], check=True)
        pad = np.zeros(RATE // 2, np.int16)
        audio = np.concatenate([pad, read_wav(raw), pad]) + rng.normal(0, 60, RATE + len(read_wav(raw)))
        write_wav(tmp_path / "w.wav", np.clip(audio, -32768, 32767).astype(np.int16))
        heard += "safety" in [d.action for d in hear(tmp_path / "w.wav", spotter)]
    assert heard >= len(VOICES) // 3


def test_reset_puts_stream_time_back(spotter):
    clip = CLIPS / "stop-439c84f4_nohash_1.wav"
    first = hear(clip, spotter)
    spotter.reset()
    spotter.process(np.zeros(3 * RATE, np.int16))   # 3 s of silence, then forget it
    spotter.reset()
    again = list(spot_file(clip, spotter))
    assert [round(d.t, 2) for d in again] == [round(d.t, 2) for d in first]


def write_stereo(path: Path, mono: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(mono, 2).astype("<i2").tobytes())


def test_spot_file_reads_any_rate_and_channel_count(spotter, tmp_path):
    clip = CLIPS / "stop-439c84f4_nohash_1.wav"
    mono = read_wav(clip)
    write_stereo(tmp_path / "44k.wav", resample(mono, RATE, 44100), 44100)
    write_stereo(tmp_path / "48k.wav", resample(mono, RATE, 48000), 48000)
    for other in ("44k.wav", "48k.wav"):
        found = hear(tmp_path / other, spotter)
        assert [d.action for d in found] == ["stop"], other
        assert abs(found[0].t - hear(clip, spotter)[0].t) < 0.1
    write_wav(tmp_path / "8k.wav", resample(mono, RATE, 8000), 8000)
    # a telephone band (an 8 kHz headset), truly band-limited since the resampler filters: heard
    # by both engines, and nothing else (the learned one trains on some band-limited speech)
    assert [d.action for d in hear(tmp_path / "8k.wav", spotter)] == ["stop"]


@pytest.mark.sphinx
def test_unknown_words_finds_nonsense():
    from voicecoach.hearing.sphinx import unknown_words
    assert unknown_words(["pain", "flurbixate now"]) == ["flurbixate"]


def test_odd_frame_lengths_hear_the_same_as_10ms_frames(spotter):
    audio = np.concatenate([read_wav(CLIPS / "stop-439c84f4_nohash_1.wav"), np.zeros(RATE // 2, np.int16)])
    spotter.reset()
    by_frame = [d for i in range(0, len(audio), 160) for d in spotter.process(audio[i:i + 160])]
    spotter.reset()
    sizes = [1, 97, 333, 160, 1601, 7]
    odd, i, k = [], 0, 0
    while i < len(audio):
        odd += spotter.process(audio[i:i + sizes[k % len(sizes)]])
        i, k = i + sizes[k % len(sizes)], k + 1
    assert by_frame and odd == by_frame


def test_bad_keywords_are_refused():
    with pytest.raises(ValueError):
        Keyword("pain", "panic")
    with pytest.raises(ValueError):
        make_spotter(default_keywords(), engine="vosk")


@pytest.mark.sphinx
def test_words_pocketsphinx_cannot_pronounce_are_refused():
    with pytest.raises(ValueError):
        make_spotter([Keyword("flurbixate", "safety")])


@pytest.mark.parametrize("bad", ["text", "directory", "missing"])
def test_listen_to_a_file_it_cannot_read_says_so_in_one_line(tmp_path: Path, bad: str, user_env) -> None:
    """Exit 2 and one line naming the file, never a traceback; what the good file before it
    gave is still printed."""
    from conftest import DATA, voicecoach
    path = {"text": tmp_path / "notes.wav", "directory": tmp_path, "missing": tmp_path / "gone.wav"}[bad]
    if bad == "text":
        path.write_text("not a recording\n")
    good = DATA / "speech" / "stop-person.wav"
    r = voicecoach("listen", "--file", str(good), "--file", str(path), env=user_env)
    assert r.returncode == 2, r.stderr
    assert '"word": "stop"' in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in r.stderr, r.stderr
