"""The player: sample-exact placement, a cut within one frame, and a record of what it said."""

from __future__ import annotations

import numpy as np
import pytest

from voicecoach.audio import FRAME, RATE
from voicecoach.coach import is_own_voice
from voicecoach.playback import FADE, Player

TONE = (8000 * np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE)).astype(np.int16)   # 1 s


def render(player: Player, seconds: float) -> np.ndarray:
    return np.concatenate([player.frame() for _ in range(int(seconds * RATE / FRAME))])


def test_a_clip_starts_on_its_sample_even_inside_a_frame():
    p = Player()
    p.schedule("tone", TONE, at=0.1234)
    out = render(p, 1.5)
    first = np.flatnonzero(out)[0]
    assert abs(first - round(0.1234 * RATE)) <= 1          # the sine's first sample may be 0
    assert not p.busy


def test_cut_silences_within_one_frame_with_a_short_fade():
    p = Player()
    p.schedule("tone", TONE, at=0.0)
    before = render(p, 0.3)
    p.cut(p.now)
    after = render(p, 0.5)
    assert np.abs(before).max() > 7000
    assert np.all(after[FADE:] == 0)                       # silent after the fade
    assert 0 < np.abs(after[:FADE]).max() <= 8000          # the fade ramps down, no click
    assert not p.busy
    assert p.timeline[0].cut_at == pytest.approx(0.3)


def test_cut_drops_what_was_scheduled_later():
    p = Player()
    p.schedule("now", TONE[:1600], at=0.0)
    p.schedule("later", TONE, at=0.5)
    render(p, 0.05)
    p.cut(p.now)
    assert [x.text for x in p.timeline] == ["now"]
    assert np.all(render(p, 1.0)[FADE:] == 0)


def test_overlapping_clips_mix_without_overflow():
    p = Player()
    loud = np.full(RATE // 10, 30000, np.int16)
    p.schedule("a", loud, at=0.0)
    p.schedule("b", loud, at=0.0)
    assert render(p, 0.1).max() == 32767


def test_speaking_reports_the_words_sounding_then():
    p = Player()
    words = (("stop", 0.0, 0.3), ("now", 0.35, 0.6), ("numbness", 0.7, 1.0))
    p.schedule("stop now numbness", TONE, at=2.0, words=words)
    assert p.speaking(2.0, 2.2, margin=0.0) == ["stop"]
    assert p.speaking(2.75, 2.9, margin=0.0) == ["numbness"]
    assert p.speaking(0.0, 1.0, margin=0.25) == []
    render(p, 2.4)
    p.cut(p.now)                                            # cut before "numbness" was said
    assert p.speaking(2.75, 2.9, margin=0.0) == []


def test_own_voice_matches_phrases_and_words_built_on_a_keyword():
    assert is_own_voice("numb", ["or", "numbness"])
    assert is_own_voice("pins and needles", ["pins", "and", "needles", "or"])
    assert not is_own_voice("pins and needles", ["pins", "or"])
    assert not is_own_voice("pain", ["one", "two"])
    assert not is_own_voice("pain", [])
