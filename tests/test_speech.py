"""Speech rendering against the real pyttsx3 + espeak-ng (no mocks): a wrong clip is a wrong
coach, so these check audio properties, not just that calls return."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio import RATE, rms_dbfs
from voicecoach.speech import (
    EARCONS,
    Clip,
    Voice,
    VoiceSettings,
    count_words,
    earcon,
    list_voices,
)


@pytest.fixture
def voice(tmp_path: Path) -> Voice:
    return Voice(cache_dir=tmp_path)


def test_render_one_is_short_speech(voice: Voice) -> None:
    clip = voice.render("one")
    assert clip.samples.dtype == np.int16 and clip.samples.ndim == 1
    assert 0.1 < clip.duration < 1.0
    assert rms_dbfs(clip.samples) > -30  # speech, not silence
    # trimmed: the edges (first/last 5 ms) are faded, not cut mid-sound
    assert abs(int(clip.samples[0])) < 200 and abs(int(clip.samples[-1])) < 200
    assert [w for w, _, _ in clip.words] == ["one"]


def test_counts_fit_their_slot(voice: Voice) -> None:
    clips = voice.render_all(count_words(10), {w: 0.85 for w in count_words(10)})
    assert list(clips) == count_words(10)
    for word, clip in clips.items():
        assert 0.1 < clip.duration <= 0.85, word
        assert rms_dbfs(clip.samples) > -30, word


def test_long_sentence_is_compressed_to_fit(voice: Voice) -> None:
    text = "Breathe in slowly, and reach up with both arms, then hold the stretch."
    natural = voice.render(text)
    fitted = voice.render(text, max_seconds=1.0)
    assert natural.duration > 2.5
    assert 0.8 < fitted.duration <= 1.0
    assert rms_dbfs(fitted.samples) > -30
    assert len(fitted.words) == len(natural.words)
    assert fitted.words[-1][2] <= fitted.duration + 0.02


def test_second_render_comes_from_disk(tmp_path: Path) -> None:
    first = Voice(cache_dir=tmp_path).render("Lower your arms slowly.")
    fresh = Voice(cache_dir=tmp_path)
    start = time.perf_counter()
    again = fresh.render("Lower your arms slowly.")
    assert time.perf_counter() - start < 0.05
    assert fresh.engine is None  # no synthesizer was created
    assert np.array_equal(first.samples, again.samples)
    assert first.words == again.words


def test_rate_is_part_of_the_key(tmp_path: Path) -> None:
    slow = Voice(VoiceSettings(rate=140), cache_dir=tmp_path).render("Relax your shoulders.")
    fast = Voice(VoiceSettings(rate=260), cache_dir=tmp_path).render("Relax your shoulders.")
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert slow.duration > fast.duration * 1.4


def test_cache_stays_under_its_bound(tmp_path: Path) -> None:
    bound = 150_000
    voice = Voice(cache_dir=tmp_path, max_cache_bytes=bound)
    for n in count_words(40):
        voice.render(f"Stretch number {n}.")
    files = list(tmp_path.glob("*.npz"))
    assert 3 <= len(files) < 40
    assert sum(f.stat().st_size for f in files) <= bound
    assert not list(tmp_path.glob("*.tmp"))


def test_eviction_is_least_recently_used(tmp_path: Path) -> None:
    probe = Voice(cache_dir=tmp_path / "probe")
    probe.render("Phrase alpha.")
    (size,) = [f.stat().st_size for f in (tmp_path / "probe").glob("*.npz")]
    voice = Voice(cache_dir=tmp_path / "lru", max_cache_bytes=int(size * 3.5))
    for text in ("Phrase alpha.", "Phrase bravo.", "Phrase charlie."):
        voice.render(text)
        time.sleep(0.01)  # distinct mtimes
    voice.render("Phrase alpha.")  # a read makes alpha recent
    time.sleep(0.01)
    voice.render("Phrase delta.")  # over the bound: bravo is the oldest
    reader = Voice(cache_dir=tmp_path / "lru")
    reader.render("Phrase alpha.")
    assert reader.engine is None
    reader.render("Phrase bravo.")
    assert reader.engine is not None


def test_corrupt_cache_file_is_rerendered(tmp_path: Path) -> None:
    good = Voice(cache_dir=tmp_path).render("Hold it there.")
    (cached,) = tmp_path.glob("*.npz")
    cached.write_bytes(b"PK\x03\x04 not really a zip")
    rerender = Voice(cache_dir=tmp_path)
    again = rerender.render("Hold it there.")
    assert rerender.engine is not None  # re-synthesized, not a crash
    # successive pyttsx3 renders differ by a few ms (espeak state), unlike `espeak-ng -w`
    assert abs(again.duration - good.duration) < 0.03
    assert rms_dbfs(again.samples) > -30
    reloaded = Voice(cache_dir=tmp_path)
    assert np.array_equal(reloaded.render("Hold it there.").samples, again.samples)
    assert reloaded.engine is None  # the rewritten file is valid


def test_nothing_printed_on_stdout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    Voice(cache_dir=tmp_path).render_all(["Audio check.", "Second phrase."])
    out, _ = capfd.readouterr()
    assert out == ""


def test_words_are_ordered_and_inside_the_clip(voice: Voice) -> None:
    clip = voice.render("Stop now and seek help.")
    assert [w for w, _, _ in clip.words] == ["stop", "now", "and", "seek", "help"]
    previous_end = 0.0
    for word, start, end in clip.words:
        assert previous_end - 1e-9 <= start < end <= clip.duration + 1e-9, word
        previous_end = end
    # "help" is near the end, "stop" near the start: the estimate tracks the audio
    assert clip.words[0][1] < 0.1 and clip.words[-1][2] > clip.duration - 0.1


def test_empty_text_is_refused(voice: Voice) -> None:
    with pytest.raises(ValueError):
        voice.render("  ")


def _spectrum(samples: np.ndarray) -> np.ndarray:
    """Long-term average log spectrum: a voice's timbre, robust to espeak's timing jitter."""
    frames = np.lib.stride_tricks.sliding_window_view(samples.astype(float), 512)[::256]
    return np.log(np.abs(np.fft.rfft(frames * np.hanning(512), axis=1)).mean(axis=0) + 1)


def test_voices_differ(tmp_path: Path) -> None:
    def render(voice: str | None) -> np.ndarray:
        return Voice(VoiceSettings(voice=voice), cache_dir=tmp_path).render("Hello there.").samples

    us, default, gb = render("gmw/en-us"), render(None), render("gmw/en")

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(_spectrum(a) - _spectrum(b)).mean())

    assert distance(us, gb) > 0.18
    # None means the engine default (gmw/en) even right after another voice was used:
    # espeak's state is process-wide
    assert distance(default, gb) < distance(default, us) / 2


def test_list_voices() -> None:
    voices = list_voices()
    assert len(voices) > 10
    assert any(vid == "gmw/en-us" for vid, _, _ in voices)
    assert all(isinstance(langs, list) for _, _, langs in voices)


def test_count_words() -> None:
    words = count_words(600)
    assert len(words) == 600
    assert words[:3] == ["one", "two", "three"]
    assert words[20] == "twenty-one" and words[99] == "one hundred"
    assert words[104] == "one hundred five" and words[599] == "six hundred"
    with pytest.raises(ValueError):
        count_words(601)


@pytest.mark.parametrize("name", EARCONS)
def test_earcons_are_short_tones(name: str) -> None:
    samples = earcon(name)
    assert samples.dtype == np.int16
    assert 0.1 < len(samples) / RATE <= 0.6
    assert -20 < rms_dbfs(samples) < -3
    assert abs(int(samples[-1])) < 100  # faded out


def test_alert_is_two_tone() -> None:
    samples = earcon("alert").astype(float)
    seg = int(0.1 * RATE)

    def peak_hz(x: np.ndarray) -> float:
        return float(np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x))))) * RATE / len(x))

    first = peak_hz(samples[int(0.02 * RATE) : int(0.02 * RATE) + seg])
    second = peak_hz(samples[int(0.15 * RATE) : int(0.15 * RATE) + seg])
    assert abs(first - second) > 150


def test_clip_duration() -> None:
    assert Clip("x", np.zeros(8000, np.int16), ()).duration == 0.5
