"""Which spotter hears a session: the engine choice, in one place."""

from __future__ import annotations

from typing import Sequence

from voicecoach.hearing.enroll import load_enrollment
from voicecoach.hearing.learned import LearnedSpotter, Model, unknown
from voicecoach.hearing import ENGINES, sphinx_available, sphinx_missing
from voicecoach.hearing.words import Keyword, Spotter


def make_spotter(keywords: Sequence[Keyword], engine: str = "auto") -> Spotter:
    """The spotter for `keywords`: the learned one where it knows every word (it hears the
    safety words far more often: docs/benchmarks.md), confirming grey-zone words with the person's
    enrolled voice if `voicecoach enroll` was run; else the tuned two-stage pocketsphinx one.
    Raises EngineMissing where that one is needed and pocketsphinx is not installed (32-bit ARM)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    other: list[str] = []
    if engine != "pocketsphinx":
        model = Model.load()
        other = unknown((k.phrase for k in keywords), model)
        if not other:
            return LearnedSpotter(keywords, model, load_enrollment())
        if engine == "learned":
            raise ValueError("the learned engine knows only the default words; use --engine pocketsphinx")
    if not sphinx_available():
        raise sphinx_missing(other)
    from voicecoach.hearing.sphinx import PocketsphinxSpotter, Tuning   # here: it imports pocketsphinx
    return PocketsphinxSpotter(keywords, Tuning.load())
