"""Speech embeddings: streamed equal computed at once, pure after reset, carried by the model."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio import FRAME, read_wav
from voicecoach.hearing.embedding import DIMS, STEPS, STRIDE, Embedder
from voicecoach.hearing.learned import LearnedSpotter, Model
from voicecoach.hearing.words import default_keywords, spot_file

STOP = Path(__file__).parent / "data" / "speech" / "listening" / "stop-439c84f4_nohash_1.wav"


def streamed(embedder: Embedder, audio: np.ndarray) -> list:
    out = [embedder.push(audio[i:i + FRAME]) for i in range(0, len(audio) - FRAME + 1, FRAME)]
    return [w for w in out if w is not None]


@pytest.mark.head
def test_streamed_windows_equal_the_windows_of_the_whole_clip() -> None:
    """Training (clip) and the live stream (push) must give the head the same numbers."""
    audio = read_wav(STOP)
    embedder = Embedder()
    whole, ends = embedder.clip(audio)
    windows = streamed(embedder, audio)
    assert len(windows) == len(audio) // FRAME // STRIDE == len(whole) - (STEPS - 1)
    assert windows[0].shape == (STEPS, DIMS)
    scale = np.abs(whole).max()
    for i, w in enumerate(windows):        # float32 sums in another order: 0.1 % of the range
        assert np.abs(w - whole[i:i + STEPS]).max() <= 0.005 * scale
    assert np.allclose(ends[STEPS - 1:], (np.arange(len(windows)) + 1) * STRIDE * FRAME / 16000)
    assert ends[STEPS - 2] == 0 and np.all(np.diff(ends) > 0)


@pytest.mark.head
def test_the_same_frames_after_reset_give_the_same_windows() -> None:
    audio = read_wav(STOP)
    embedder = Embedder()
    first = streamed(embedder, audio)
    embedder.reset()
    assert all(np.array_equal(a, b) for a, b in zip(first, streamed(embedder, audio)))


def test_the_packaged_model_has_an_embedding_head(tmp_path: Path) -> None:
    """The head has the whole score (blend 1: the nets are not run where it can) or a share."""
    model = Model.load()
    assert model.head and 0 < model.blend <= 1
    assert model.head_probabilities(np.zeros((2, STEPS, DIMS), np.float32)).shape == (2, len(model.labels))
    path = tmp_path / "m.npz"
    replace(model, blend=0.5).save(path)
    again = Model.load(path)
    assert again.blend == 0.5 and len(again.head) == len(model.head) and len(again.nets) == len(model.nets)


@pytest.mark.head
def test_without_a_head_the_score_is_the_log_mel_nets_alone() -> None:
    """blend = 0 and no head is the previous spotter: nothing of the embedder runs."""
    model = Model.load()
    audio = read_wav(STOP)
    alone = LearnedSpotter(default_keywords(), replace(model, head=(), blend=0.0))
    blended = LearnedSpotter(default_keywords(), model)
    assert alone._embedder is None
    a = [s for i in range(0, len(audio), FRAME) for _, s in alone.scores(audio[i:i + FRAME])]
    b = [s for i in range(0, len(audio), FRAME) for _, s in blended.scores(audio[i:i + FRAME])]
    assert len(a) == len(b) and not np.allclose(a, b)
    assert np.allclose(np.sum(b, axis=1), 1.0)


def test_without_onnxruntime_the_nets_hear_alone_at_their_own_threshold(tmp_path: Path) -> None:
    """onnxruntime has no build for 32-bit ARM (a Pi on a 32-bit OS): there the spotter must
    still load and hear, with the log-mel nets at the threshold they were chosen at alone."""
    model = Model.load()
    assert model.alone == 0.4 and model.nets_alone().threshold == 0.4 and not model.nets_alone().head
    replace(model, alone=0.45).save(tmp_path / "m.npz")
    assert Model.load(tmp_path / "m.npz").alone == 0.45
    code = ("import sys; sys.modules['onnxruntime'] = None\n"       # what a missing module does: ImportError
            "from voicecoach.hearing.embedding import available\n"
            "from voicecoach.hearing.learned import LearnedSpotter\n"
            "from voicecoach.hearing.words import default_keywords, spot_file\n"
            "spotter = LearnedSpotter(default_keywords())\n"
            "print(available(), len(spotter.model.head), spotter.model.threshold, spotter._embedder)\n"
            f"print(*[d.action for d in spot_file({str(STOP)!r}, spotter)])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["False 0 0.4 None", "stop"]


@pytest.mark.head
def test_an_action_can_have_its_own_threshold(tmp_path: Path) -> None:
    """A model may listen for one action more or less keenly than the rest; the threshold is
    saved with it, and a person's "stop" below its own threshold is not heard."""
    model = Model.load()
    strict = replace(model, actions=(("stop", 0.9999),))
    strict.save(tmp_path / "m.npz")
    loaded = Model.load(tmp_path / "m.npz")
    assert loaded.threshold_for("stop") == 0.9999 and loaded.threshold_for("safety") == model.threshold
    assert [d.action for d in spot_file(STOP, LearnedSpotter(default_keywords(), model))] == ["stop"]
    assert list(spot_file(STOP, LearnedSpotter(default_keywords(), loaded))) == []
    assert loaded.nets_alone().actions == ()


@pytest.mark.head
def test_the_head_alone_needs_no_log_mel_nets() -> None:
    """With the head's share at 1 the score is the head's own, and the nets are not run."""
    model = replace(Model.load(), blend=1.0)
    spotter = LearnedSpotter(default_keywords(), model)
    audio = read_wav(STOP)
    scores = [s for i in range(0, len(audio), FRAME) for _, s in spotter.scores(audio[i:i + FRAME])]
    assert scores and spotter._recent == []
    assert np.allclose(scores[-1], spotter._head)


@pytest.mark.head
def test_a_word_repeated_between_digital_silences_is_heard(tmp_path: Path) -> None:
    """A person's "stop" played again and again into a PulseAudio monitor (exact zeros between,
    the recording starting mid-word), as `voicecoach doctor`'s test person says it: the head,
    which never heard digital silence, hears a quiet room there instead. Without that it missed
    this one in five of these twelve cuts."""
    from voicecoach.audio import RATE, write_wav
    word = read_wav(Path(__file__).parent / "data" / "speech" / "stop-person.wav")
    missed = []
    for gap in (0.35, 0.5, 0.8):
        one = np.concatenate([word, np.zeros(int(gap * RATE), np.int16)])
        for start in (0.0, 0.3, 0.6, 0.9):
            path = tmp_path / f"{gap}-{start}.wav"
            write_wav(path, np.concatenate([one] * 4)[int(start * RATE):int(start * RATE) + 3 * RATE])
            if not any(d.action == "stop" for d in spot_file(path, LearnedSpotter(default_keywords()))):
                missed.append((gap, start))
    assert missed == []
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(3 * RATE, np.int16))
    assert list(spot_file(silence, LearnedSpotter(default_keywords()))) == []
