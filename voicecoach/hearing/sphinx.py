"""The hearing: a streaming keyword spotter, frames in, detections out.

Two stages, because one pocketsphinx KWS threshold cannot both hear "pain" every time and
ignore "paint" or a person counting along: (1) pocketsphinx keyword search with per-word
thresholds tuned for recall on held-back data (scripts/tune-spotter -> data/kws.json);
(2) each candidate's buffered audio is re-decoded by a grammar where the keyword must beat
competing words (verifier.Verifier). Both run on the caller's thread; stage 2 only on hits.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence, Union

import numpy as np
from pocketsphinx import Decoder

from voicecoach.audio import FRAME, RATE
from voicecoach.hearing.verifier import Verifier, VerifierSettings, in_dictionary
from voicecoach.hearing.words import Detection, Keyword, whole_frames

RING_SECONDS = 1.5
MAX_WORD_SECONDS = 1.2
LOOSEST_EXPONENT, TIGHTEST_EXPONENT = -45.0, -5.0
MODEL = {"samprate": RATE, "loglevel": "ERROR"}
VERIFIER_MODEL = {"samprate": RATE, "loglevel": "FATAL"}   # FSG "no match" errors are expected
UTTERANCE_SECONDS = 20.0   # restart KWS when idle this long, so its lattice stays small


@dataclass(frozen=True)
class Tuning:
    """Parameters from data/kws.json: per-phrase KWS threshold exponents and stage-2 knobs."""

    exponents: dict[str, float] = field(default_factory=dict)
    default_exponent: float = -20.0
    verifier: VerifierSettings = VerifierSettings()

    @classmethod
    def load(cls, path: Union[str, Path, None] = None) -> "Tuning":
        """Read tuned parameters; the packaged kws.json unless a path is given."""
        if path is None:
            text = resources.files("voicecoach").joinpath("data/kws.json").read_text()
        else:
            text = Path(path).read_text()
        data = json.loads(text)
        return cls(
            exponents={k: float(v) for k, v in data.get("exponents", {}).items()},
            default_exponent=float(data.get("default_exponent", -20.0)),
            verifier=VerifierSettings(**data.get("verifier", {})),
        )

    def exponent(self, keyword: Keyword) -> float:
        """log10 of the KWS threshold: sensitivity maps 0..1 onto 1e-5..1e-45."""
        if keyword.sensitivity is not None:
            span = TIGHTEST_EXPONENT - LOOSEST_EXPONENT
            return TIGHTEST_EXPONENT - keyword.sensitivity * span
        return self.exponents.get(keyword.phrase, self.default_exponent)


def unknown_words(phrases: Iterable[str]) -> list[str]:
    """Words the engine cannot pronounce (a routine using them could never be heard)."""
    decoder = Decoder(kws_threshold=1e-20, keyphrase="stop", **MODEL)
    words = dict.fromkeys(w for p in phrases for w in p.lower().split())
    return [w for w in words if not in_dictionary(decoder, w)]


def _kws_decoder(keywords: Sequence[Keyword], tuning: Tuning) -> Decoder:
    """A KWS decoder with one threshold per phrase (pocketsphinx only reads them from a file)."""
    lines = "".join(f"{k.phrase} /1e{tuning.exponent(k):.1f}/\n" for k in keywords)
    fd, path = tempfile.mkstemp(suffix=".kws", text=True)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(lines)
        return Decoder(kws=path, **MODEL)
    finally:
        os.unlink(path)


class PocketsphinxSpotter:
    """Stage 1 pocketsphinx KWS (loose per-phrase thresholds) + stage 2 grammar verification.

    The KWS utterance is not restarted on every hit: a restart throws away the partial match
    of a longer phrase ("painful", "pins and needles") whenever a shorter one fires first.
    Hits are deduplicated instead, and the utterance is restarted only when nothing is pending.
    """

    def __init__(self, keywords: Sequence[Keyword], tuning: Tuning, verify: bool = True) -> None:
        missing = unknown_words(k.phrase for k in keywords)
        if missing:
            raise ValueError(f"not in the pocketsphinx dictionary: {', '.join(missing)}")
        self.keywords = {k.phrase.lower(): k for k in keywords}
        self.tuning = tuning
        self.kws = _kws_decoder(keywords, tuning)
        self.verifier = Verifier(list(self.keywords), tuning.verifier, VERIFIER_MODEL) if verify else None
        self._initial_cmn = self.kws.get_cmn()    # the noise estimate adapts: reset restores it
        self._started = False
        self.reset()

    def reset(self) -> None:
        """Forget all audio; stream time restarts at 0."""
        if self._started:
            self.kws.end_utt()
        self.kws.set_cmn(self._initial_cmn)
        self.ring = np.zeros(int(RING_SECONDS * RATE), dtype=np.int16)
        self.pending = np.zeros(0, dtype=np.int16)
        self.fed = 0                      # samples given to the KWS decoder since reset
        self.utt_start = 0                # sample where the current KWS utterance began
        self.seen: set[tuple[str, int]] = set()
        self.candidates: list[tuple[str, int, int, float]] = []   # (phrase, start, end, score)
        self.kws.start_utt()
        self._started = True

    def process(self, frame: np.ndarray) -> list[Detection]:
        """Feed audio of any length; decoding runs on whole 10 ms frames only, so chunking
        never changes what is heard."""
        frames, self.pending = whole_frames(self.pending, frame)
        found: list[Detection] = []
        for f in frames:
            found.extend(self._step(f))
        return found

    def _step(self, frame: np.ndarray) -> list[Detection]:
        self.ring[:-FRAME] = self.ring[FRAME:]
        self.ring[-FRAME:] = frame
        self.kws.process_raw(frame.tobytes(), False, False)
        self.fed += FRAME
        if self.kws.hyp() is not None:
            self._collect()
        due = [c for c in self.candidates if self.fed >= c[2] + self.tuning.verifier.hold * RATE]
        if not due:
            if not self.candidates and self.fed - self.utt_start > UTTERANCE_SECONDS * RATE:
                self._restart()
            return []
        self.candidates = [c for c in self.candidates if c not in due]
        found = [d for d in (self._judge(c) for c in due) if d is not None]
        if found:                          # a heard keyword ends this stretch of listening
            self.candidates = []
            self._restart()
        return found

    def _restart(self) -> None:
        self.kws.end_utt()
        self.kws.start_utt()
        self.utt_start = self.fed
        self.seen.clear()

    def _collect(self) -> None:
        """New KWS hits become candidates (pocketsphinx reports every hit again each frame)."""
        for seg in self.kws.seg():
            phrase = seg.word.strip()
            key = (phrase, seg.start_frame // 5)
            if phrase not in self.keywords or key in self.seen:
                continue
            self.seen.add(key)
            end = self.utt_start + (seg.end_frame + 1) * FRAME
            start = self.utt_start + seg.start_frame * FRAME
            if not 0 < end - start <= MAX_WORD_SECONDS * RATE:
                start = end - int(MAX_WORD_SECONDS * RATE / 2)   # KWS sometimes reports junk starts
            self.candidates.append((phrase, start, end, float(seg.prob)))

    def _judge(self, candidate: tuple[str, int, int, float]) -> Detection | None:
        """Stage 2: the candidate stands if a re-decoded window hears a keyword of its action."""
        phrase, start, end, score = candidate
        action = self.keywords[phrase].action
        if self.verifier is not None and not any(
                self.keywords.get(w or "", None) is not None and self.keywords[w].action == action
                for w in (self.verifier.word(seg) for seg in self._windows(start, end))):
            return None
        return Detection(phrase, action, end / RATE, start / RATE, score)

    def _windows(self, start: int, end: int) -> list[np.ndarray]:
        """The buffered audio of each verification window (clipped to what the ring holds)."""
        assert self.verifier is not None
        oldest = self.fed - len(self.ring)
        out = []
        for i, (before, after) in enumerate(self.verifier.settings.windows):
            lo = (start if i == 0 else end) + int(before * RATE)
            hi = (self.fed if i == 0 else end + int(after * RATE))
            lo, hi = max(lo, oldest, 0), min(hi, self.fed)
            if hi - lo >= 10 * FRAME:
                out.append(self.ring[len(self.ring) - (self.fed - lo):len(self.ring) - (self.fed - hi) or None])
        return out
