"""A learned keyword spotter: a small network over the last second of log-mel features.

pocketsphinx scores a word against a phone loop, and on short words ("pain", "numb", "hurts")
no threshold both hears them and ignores a person counting (bench/hearing.py). This spotter
is trained for exactly this vocabulary (bench/train_spotter.py: many synthetic voices with
noise and reverb against confusable words, counting and everyday speech) and runs every 30 ms
on the stream; its weights ship in the package (data/spotter.npz, ~0.7 MB).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from typing import Dict, List, Optional, Sequence

import numpy as np

from voicecoach.audio import FRAME, RATE
from voicecoach.features import BANDS, FLOOR, LogMelStream
from voicecoach.listening import Detection, Keyword, whole_frames

CONTEXT = 100           # frames of features the network sees (1 s)
POOL = 2                # frames averaged together before the network (20 ms resolution)
EVERY = 3               # frames between evaluations (30 ms)
SMOOTH = 3              # evaluations averaged before a threshold is applied
REFRACTORY = 1.0        # seconds during which one action is not reported again


def window_vector(feats: np.ndarray) -> np.ndarray:
    """The network's input for a (CONTEXT, BANDS) feature window: pooled in time, and each band
    less its mean over the window (a microphone's colour and level drop out)."""
    pooled = feats.reshape(CONTEXT // POOL, POOL, BANDS).mean(axis=1)
    return (pooled - pooled.mean(axis=0)).ravel()


@dataclass(frozen=True)
class Model:
    """A two-layer network: standardised window -> ReLU hidden -> softmax over labels."""

    labels: tuple          # "" is "no keyword"; the others are phrases
    mean: np.ndarray
    std: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    threshold: float

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Rows of label probabilities for rows of window vectors."""
        h = np.maximum(((x - self.mean) / self.std) @ self.w1 + self.b1, 0.0)
        z = h @ self.w2 + self.b2
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def save(self, path) -> None:
        np.savez_compressed(path, labels=np.array(self.labels), mean=self.mean, std=self.std,
                            w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2,
                            threshold=np.array(self.threshold))

    @classmethod
    def load(cls, path=None) -> "Model":
        """The packaged model unless a path is given."""
        if path is None:
            data = np.load(BytesIO(resources.files("voicecoach").joinpath("data/spotter.npz").read_bytes()))
        else:
            data = np.load(path)
        return cls(tuple(str(x) for x in data["labels"]), data["mean"], data["std"], data["w1"],
                   data["b1"], data["w2"], data["b2"], float(data["threshold"]))


def covers(keywords: Sequence[Keyword], model: Optional[Model] = None) -> bool:
    """Whether the learned model knows every phrase of this vocabulary."""
    labels = set((model or Model.load()).labels)
    return all(k.phrase.lower() in labels for k in keywords)


class LearnedSpotter:
    """Frames in, detections out (the Spotter interface); pure, so replayable from a file."""

    def __init__(self, keywords: Sequence[Keyword], model: Optional[Model] = None) -> None:
        self.model = model or Model.load()
        self.keywords: Dict[str, Keyword] = {k.phrase.lower(): k for k in keywords}
        self._index = {p: self.model.labels.index(p) for p in self.keywords}
        self._thresholds = {p: self._threshold(k) for p, k in self.keywords.items()}
        self._stream = LogMelStream()
        self.reset()

    def _threshold(self, keyword: Keyword) -> float:
        """Sensitivity 0..1 maps onto thresholds 0.99..0.5; unset, the trained threshold."""
        if keyword.sensitivity is None:
            return self.model.threshold
        return 0.99 - 0.49 * keyword.sensitivity

    def reset(self) -> None:
        self._stream.reset()
        self._feats = np.full((CONTEXT, BANDS), np.log(FLOOR))   # as if silence came before
        self._pending = np.zeros(0, np.int16)
        self._frames = 0
        self._recent: List[np.ndarray] = []
        self._last: Dict[str, float] = {}

    def process(self, frame: np.ndarray) -> List[Detection]:
        frames, self._pending = whole_frames(self._pending, frame)
        found: List[Detection] = []
        for f in frames:
            self._feats = np.roll(self._feats, -1, axis=0)
            self._feats[-1] = self._stream.frame(f)
            self._frames += 1
            if self._frames >= CONTEXT // 2 and self._frames % EVERY == 0:
                found += self._evaluate()
        return found

    def _evaluate(self) -> List[Detection]:
        probs = self.model.probabilities(window_vector(self._feats)[None, :])[0]
        self._recent = (self._recent + [probs])[-SMOOTH:]
        smooth = np.mean(self._recent, axis=0)
        t = self._frames * FRAME / RATE
        best = max(self._index, key=lambda p: smooth[self._index[p]])
        score = float(smooth[self._index[best]])
        action = self.keywords[best].action
        if score < self._thresholds[best] or t - self._last.get(action, -1e9) < REFRACTORY:
            return []
        self._last[action] = t
        return [Detection(best, action, t, max(t - 0.6, 0.0), score)]
