"""The learned spotter: features streamed equal features computed at once; engine choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicecoach.audio import FRAME, read_wav
from voicecoach.features import LogMelStream, logmel
from voicecoach.learned import LearnedSpotter, Model, covers
from voicecoach.listening import Keyword, PocketsphinxSpotter, default_keywords, make_spotter, spot_file

STOP = Path(__file__).parent / "data" / "speech" / "listening" / "stop-439c84f4_nohash_1.wav"


def test_streamed_features_equal_features_of_the_whole_clip() -> None:
    audio = read_wav(STOP)
    stream = LogMelStream()
    rows = np.array([stream.frame(audio[i:i + FRAME]) for i in range(0, len(audio) - FRAME + 1, FRAME)])
    assert np.allclose(rows, logmel(audio))


def test_the_packaged_model_knows_the_default_words_only() -> None:
    model = Model.load()
    assert covers(default_keywords(), model)
    assert not covers([Keyword("cramp", "safety")], model)
    assert model.labels[0] == "" and len(model.labels) == len(default_keywords()) + 1


def test_auto_engine_falls_back_to_pocketsphinx_for_other_words() -> None:
    assert isinstance(make_spotter(default_keywords()), LearnedSpotter)
    assert isinstance(make_spotter([Keyword("cramp", "safety")]), PocketsphinxSpotter)
    with pytest.raises(ValueError, match="learned engine knows only"):
        make_spotter([Keyword("cramp", "safety")], "learned")
    with pytest.raises(ValueError, match="unknown engine"):
        make_spotter(default_keywords(), "vosk")


@pytest.mark.parametrize("engine", ["learned", "pocketsphinx"])
def test_each_engine_hears_a_person_say_stop_once(engine: str) -> None:
    found = list(spot_file(STOP, make_spotter(default_keywords(), engine)))
    assert [d.action for d in found] == ["stop"]


def test_sensitivity_moves_the_learned_threshold() -> None:
    spotter = LearnedSpotter([Keyword("stop", "stop", 1.0), Keyword("pain", "safety", 0.0)])
    assert spotter._thresholds == {"stop": pytest.approx(0.5), "pain": pytest.approx(0.99)}


def test_the_spotter_sees_the_last_second_of_the_stream_and_decides_on_its_own_scores() -> None:
    audio = read_wav(STOP)
    audio = np.concatenate([audio, audio, audio])           # longer than the 1 s window
    spotter = LearnedSpotter(default_keywords())
    peaks = []
    for i in range(0, len(audio) - FRAME + 1, FRAME):
        peaks += [float(s[spotter.model.labels.index("stop")]) for _, s in spotter.scores(audio[i:i + FRAME])]
    assert np.allclose(spotter.window(), logmel(audio)[-100:])
    assert len(peaks) == len(audio) // FRAME // 3 - 50 // 3     # every 3rd frame from the 50th
    spotter.reset()
    heard = [d for i in range(0, len(audio) - FRAME + 1, FRAME) for d in spotter.process(audio[i:i + FRAME])]
    assert heard and all(d.score >= spotter._thresholds["stop"] for d in heard)
    assert max(peaks) >= spotter._thresholds["stop"]
