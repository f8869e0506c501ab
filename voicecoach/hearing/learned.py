"""A learned keyword spotter: a small convolutional network over the last second of log-mel.

pocketsphinx scores a word against a phone loop, and on short words ("pain", "numb", "hurts")
no threshold both hears them and ignores a person counting (bench/hearing.py). This spotter
is trained for exactly this vocabulary (bench/train_spotter.py: espeak-ng and flite voices,
sped and slowed, with noise and reverb, against confusable words, counting, everyday speech
and people's recordings) and runs every 30 ms on the stream; its weights ship in the package
(data/spotter.npz, ~2.3 MB) and run in numpy. A small head over speech embeddings
(embedding.py, every 80 ms; bench/train_head_real.py: neural voices and real people), which
learned speech from real voices, has a share of each score (`blend`; the packaged model gives it
all, and the nets run only where onnxruntime is missing). A person's enrolled takes (enroll.py)
may confirm a word it was unsure of."""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE
from voicecoach.hearing.embedding import Embedder, available
from voicecoach.hearing.features import BANDS, FLOOR, LogMelStream
from voicecoach.hearing.words import Detection, Keyword, whole_frames

if TYPE_CHECKING:
    from voicecoach.hearing.enroll import Enrollment

CONTEXT = 100           # frames of features the network sees (1 s)
POOL = 2                # frames averaged together before the network (20 ms resolution)
EVERY = 3               # frames between evaluations (30 ms)
SMOOTH = 3              # evaluations averaged before a threshold is applied
HEAD_SMOOTH = 2         # the embedding head's evaluations (80 ms apart) averaged
REFRACTORY = 1.0        # seconds during which one action is not reported again
ENROLLED_FLOOR = 0.2    # a score from which the person's enrolled takes may confirm a word (or
                        # half the action's trained threshold, where that is lower)
ENROLLED_WITHIN = 10    # evaluations (0.3 s) over which that score may have come: the head peaks
                        # near the word's end, the takes match a window ending 0.05-0.3 s after it
BACKGROUND = 300        # frames (3 s) in which a room is heard before digital silence
DIGITAL_SILENCE = 1     # a frame no sample of which is louder than this (int16) is digital silence
COMFORT_RMS = 20.0      # the quiet room (-64 dBFS) the embedding head hears through digital silence


class Background:
    """The room, replayed through digital silence that interrupts it. A file's end, a muted or
    gated microphone drop from a room's noise to exact zeros; the network never heard that drop
    and fired "tingling" on it. It was trained on rooms that go on sounding, so through such a
    silence it goes on hearing the quietest fifth of the last 3 s. Where silence came and went in
    those 3 s (clips played one after another into a PulseAudio monitor, a person's words with
    zeros between), that silence is the stream's own and is left as it is: the quietest rows
    there are soft speech (docs/hearing.md)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._rows = np.zeros((BACKGROUND, BANDS))
        self._silent = np.zeros(BACKGROUND, bool)
        self._count = 0
        self._fill: Optional[np.ndarray] = None      # the rows replayed through this silence
        self._replayed = 0

    def row(self, frame: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The feature row the network sees for this frame, given the row computed from it."""
        silent = bool(frame.max() <= DIGITAL_SILENCE and frame.min() >= -DIGITAL_SILENCE)
        if not silent:
            self._fill = None
        elif self._fill is None:
            self._fill, self._replayed = self._room(), 0
        i = self._count % BACKGROUND
        self._rows[i], self._silent[i] = row, silent
        self._count += 1
        if self._fill is None or not len(self._fill):
            return row
        self._replayed += 1
        return self._fill[(self._replayed - 1) % len(self._fill)]

    def _room(self) -> np.ndarray:
        """The quietest fifth of the rows heard, if at least a second of unbroken sound came
        before this silence; no rows otherwise."""
        if self._count < BACKGROUND // 3 or self._silent.any():
            return np.zeros((0, BANDS))
        rows = self._rows[:min(self._count, BACKGROUND)]
        level = rows.sum(axis=1)
        return rows[level <= np.percentile(level, 20)].copy()


def window_vector(feats: np.ndarray) -> np.ndarray:
    """The network's input for a (CONTEXT, BANDS) feature window: pooled in time to
    (CONTEXT // POOL, BANDS), each band less its mean over the window (a microphone's colour and
    level drop out)."""
    pooled = feats.reshape(CONTEXT // POOL, POOL, BANDS).mean(axis=1)
    return pooled - pooled.mean(axis=0)


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, dilation: int) -> np.ndarray:
    """ReLU of a valid 1-D convolution in time: x (batch, time, in), w (kernel, in, out)."""
    steps = x.shape[1] - dilation * (len(w) - 1)
    out = b + sum(x[:, k * dilation:k * dilation + steps] @ w[k] for k in range(len(w)))
    return np.maximum(out, 0.0)


@dataclass(frozen=True)
class Net:
    """Dilated 1-D convolutions over time (bands as channels), then the last `tail` steps and a
    max over all steps into a small dense layer and a softmax over labels. Convolution shares
    what it learns about a sound across positions, which a dense layer over the window did not
    (it heard "pain" at 0.65 on held-out voices)."""

    mean: np.ndarray                   # (BANDS,) input standardisation
    std: np.ndarray
    convs: Tuple[Tuple[np.ndarray, np.ndarray, int], ...]   # (w (k, in, out), b, dilation)
    dense: Tuple[Tuple[np.ndarray, np.ndarray], ...]        # (w (in, out), b); ReLU between
    tail: int

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Rows of label probabilities for a batch of window_vector windows (batch, time, bands)."""
        h = ((x - self.mean) / self.std).astype(np.float32)
        for w, b, dilation in self.convs:
            h = _conv(h, w, b, dilation)
        last = h[:, -self.tail:].transpose(0, 2, 1).reshape(len(h), -1)   # channel-major, as trained
        z = np.concatenate([last, h.max(axis=1)], axis=1)
        for i, (w, b) in enumerate(self.dense):
            z = z @ w + b
            if i < len(self.dense) - 1:
                z = np.maximum(z, 0.0)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    def arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        out = {f"{prefix}mean": self.mean, f"{prefix}std": self.std, f"{prefix}tail": np.array(self.tail)}
        for i, (w, b, dilation) in enumerate(self.convs):
            out.update({f"{prefix}conv{i}_w": w, f"{prefix}conv{i}_b": b, f"{prefix}conv{i}_dilation": np.array(dilation)})
        for i, (w, b) in enumerate(self.dense):
            out.update({f"{prefix}dense{i}_w": w, f"{prefix}dense{i}_b": b})
        return out

    @classmethod
    def from_arrays(cls, data, prefix: str) -> "Net":
        def count(kind: str) -> int:
            return sum(k.startswith(f"{prefix}{kind}") and k.endswith("_b") for k in data.files)
        convs = tuple((data[f"{prefix}conv{i}_w"], data[f"{prefix}conv{i}_b"], int(data[f"{prefix}conv{i}_dilation"]))
                      for i in range(count("conv")))
        dense = tuple((data[f"{prefix}dense{i}_w"], data[f"{prefix}dense{i}_b"]) for i in range(count("dense")))
        return cls(data[f"{prefix}mean"], data[f"{prefix}std"], convs, dense, int(data[f"{prefix}tail"]))


@dataclass(frozen=True)
class Model:
    """Nets trained alike from different seeds, their probabilities averaged: each alone
    false-alarmed on its own sounds ("nine" for "numb" in one, "paint" for "pain" in another)."""

    labels: tuple                      # "" is "no keyword"; the others are phrases
    nets: Tuple[Net, ...]
    threshold: float                   # on the blended score
    head: Tuple[Net, ...] = ()         # over speech embeddings (embedding.py), if any
    blend: float = 0.0                 # the head's share of the score
    alone: float = 0.4                 # the nets' own threshold, where the head cannot run
    actions: Tuple[Tuple[str, float], ...] = ()   # (action, threshold) where it differs from `threshold`

    def threshold_for(self, action: str) -> float:
        """The threshold of one action (safety may listen more keenly than pause)."""
        return dict(self.actions).get(action, self.threshold)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Label probabilities for a batch of window_vector windows, the nets averaged."""
        return _average(self.nets, x)

    def nets_alone(self) -> "Model":
        """The log-mel nets at their own threshold (docs/benchmarks.md: the head's share and threshold)."""
        return replace(self, head=(), blend=0.0, threshold=self.alone, actions=())

    def head_probabilities(self, x: np.ndarray) -> np.ndarray:
        """Label probabilities for a batch of embedding windows (batch, STEPS, DIMS)."""
        return _average(self.head, x)

    def save(self, path) -> None:
        arrays = {"labels": np.array(self.labels), "threshold": np.array(self.threshold),
                  "blend": np.array(self.blend), "alone": np.array(self.alone),
                  "action_names": np.array([a for a, _ in self.actions], dtype=str),
                  "action_thresholds": np.array([t for _, t in self.actions], dtype=np.float64)}
        for j, net in enumerate(self.nets):
            arrays.update(net.arrays(f"net{j}_"))
        for j, net in enumerate(self.head):
            arrays.update(net.arrays(f"head{j}_"))
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path=None) -> "Model":
        """The packaged model unless a path is given."""
        if path is None:
            data = np.load(BytesIO(resources.files("voicecoach").joinpath("data/spotter.npz").read_bytes()))
        else:
            data = np.load(path)
        def count(kind: str) -> int:
            return sum(k.startswith(kind) and k.endswith("_mean") for k in data.files)
        nets = tuple(Net.from_arrays(data, f"net{j}_") for j in range(count("net")))
        head = tuple(Net.from_arrays(data, f"head{j}_") for j in range(count("head")))
        blend = float(data["blend"]) if "blend" in data.files else 0.0
        alone = float(data["alone"] if "alone" in data.files else data["threshold"])
        actions = tuple(zip((str(a) for a in data["action_names"]), (float(t) for t in data["action_thresholds"]))) \
            if "action_names" in data.files else ()
        return cls(tuple(str(x) for x in data["labels"]), nets, float(data["threshold"]), head, blend, alone, actions)


def _average(nets: Tuple[Net, ...], x: np.ndarray) -> np.ndarray:
    return np.mean([net.probabilities(x) for net in nets], axis=0)


def unknown(phrases: Iterable[str], model: Optional[Model] = None) -> List[str]:
    """The phrases the learned model has no label for (only pocketsphinx can hear them)."""
    labels = set((model or Model.load()).labels)
    return [p for p in phrases if p.lower() not in labels]


def covers(keywords: Sequence[Keyword], model: Optional[Model] = None) -> bool:
    """Whether the learned model knows every phrase of this vocabulary."""
    return not unknown((k.phrase for k in keywords), model)


class LearnedSpotter:
    """Frames in, detections out (the Spotter interface); pure, so replayable from a file."""

    def __init__(self, keywords: Sequence[Keyword], model: Optional[Model] = None,
                 enrollment: Optional["Enrollment"] = None) -> None:
        self.model = model or Model.load()
        if self.model.head and not available():
            self.model = self.model.nets_alone()
        self.enrollment = enrollment
        self.keywords: Dict[str, Keyword] = {k.phrase.lower(): k for k in keywords}
        self._index = {p: self.model.labels.index(p) for p in self.keywords}
        self._thresholds = {p: self._threshold(k) for p, k in self.keywords.items()}
        self._floors = {p: min(ENROLLED_FLOOR, 0.5 * self.model.threshold_for(k.action)) for p, k in self.keywords.items()}
        self._actions: Dict[str, List[int]] = {}
        for p, k in self.keywords.items():
            self._actions.setdefault(k.action, []).append(self._index[p])
        self._stream = LogMelStream()
        self._background = Background()
        self._embedder = Embedder() if self.model.head else None
        self.reset()

    def _threshold(self, keyword: Keyword) -> float:
        """Sensitivity 0..1 maps onto thresholds 0.99..0.5; unset, the trained threshold."""
        if keyword.sensitivity is None:
            return self.model.threshold_for(keyword.action)
        return 0.99 - 0.49 * keyword.sensitivity

    def reset(self) -> None:
        self._stream.reset()
        self._background.reset()
        # rows written twice, CONTEXT apart, so the last second is always one contiguous slice
        self._ring = np.full((2 * CONTEXT, BANDS), np.log(FLOOR))   # as if silence came before
        self._pending = np.zeros(0, np.int16)
        self._frames = 0
        self._recent: List[np.ndarray] = []
        self._head_recent: List[np.ndarray] = []
        self._head = np.eye(len(self.model.labels))[0]     # the head's smoothed score: "nothing" yet
        self._last: Dict[str, float] = {}
        self._leaning: List[np.ndarray] = []               # the last ENROLLED_WITHIN scores
        if self._embedder is not None:
            self._embedder.reset()

    def window(self) -> np.ndarray:
        """The last second of log-mel rows, oldest first."""
        i = self._frames % CONTEXT
        return self._ring[i:i + CONTEXT]

    def process(self, frame: np.ndarray) -> List[Detection]:
        found: List[Detection] = []
        for t, smooth in self.scores(frame):
            found += self._decide(t, smooth)
        return found

    def scores(self, frame: np.ndarray) -> List[Tuple[float, np.ndarray]]:
        """(stream time, smoothed label probabilities) at each evaluation this audio completes:
        what `process` applies its thresholds to (bench/ sweeps thresholds over these)."""
        frames, self._pending = whole_frames(self._pending, frame)
        out: List[Tuple[float, np.ndarray]] = []
        for f in frames:
            embedded, due = self.hear(f)
            if embedded is not None:
                probs = self.model.head_probabilities(embedded[None])[0]
                self._head_recent = (self._head_recent + [probs])[-HEAD_SMOOTH:]
                self._head = np.mean(self._head_recent, axis=0)
            if due:
                blend = self.model.blend
                if blend >= 1.0:            # the head alone: the nets' share would be zero
                    score = self._head
                else:
                    probs = self.model.probabilities(window_vector(self.window())[None, :])[0]
                    self._recent = (self._recent + [probs])[-SMOOTH:]
                    score = (1 - blend) * np.mean(self._recent, axis=0) + blend * self._head
                out.append((self._frames * FRAME / RATE, score))
        return out

    def hear(self, frame: np.ndarray) -> Tuple[Optional[np.ndarray], bool]:
        """One whole frame into both front ends: the head's input window when an embedding is
        due (else None), and whether an evaluation is due; `window()` then holds the frame.
        bench/hearing_real.py records what the two give, through this same path."""
        embedded = self._embedder.push(self.heard_by_head(frame)) if self._embedder is not None else None
        row = self._background.row(frame, self._stream.frame(frame))
        i = self._frames % CONTEXT
        self._ring[i] = self._ring[i + CONTEXT] = row
        self._frames += 1
        return embedded, self._frames >= CONTEXT // 2 and self._frames % EVERY == 0

    def heard_by_head(self, frame: np.ndarray) -> np.ndarray:
        """The frame, or a quiet room's noise where it is digital silence: the head learned from
        clips that always had a room under them, and between a person's words played into a
        PulseAudio monitor (exact zeros) it missed one "stop" in two. Seeded by the frame's
        place in the stream, so a file is heard the same every time."""
        if np.abs(frame).max() > DIGITAL_SILENCE:
            return frame
        rng = np.random.default_rng(self._frames)
        return (rng.standard_normal(len(frame)) * COMFORT_RMS).astype(np.int16)

    def _decide(self, t: float, smooth: np.ndarray) -> List[Detection]:
        if self.enrollment is not None:
            self._leaning = (self._leaning + [smooth])[-ENROLLED_WITHIN:]
        best, score = self._best(smooth)
        if score < self._thresholds[best]:
            best, score = self._enrolled(smooth) or (best, score)
            if score < self._thresholds[best]:
                return []
        action = self.keywords[best].action
        if t - self._last.get(action, -1e9) < REFRACTORY:
            return []
        self._last[action] = t
        return [Detection(best, action, t, max(t - 0.6, 0.0), score)]

    def _best(self, smooth: np.ndarray) -> Tuple[str, float]:
        """The likeliest action's likeliest phrase, scored with its whole action's probability:
        a "pain" the network splits between "pain" and "painful" is a sure safety word."""
        family = {a: sum(float(smooth[i]) for i in idx) for a, idx in self._actions.items()}
        action = max(family, key=family.__getitem__)
        best = max((p for p in self._index if self.keywords[p].action == action), key=lambda p: smooth[self._index[p]])
        return best, family[action]

    def _enrolled(self, smooth: np.ndarray) -> Optional[Tuple[str, float]]:
        """An enrolled phrase in the grey zone (within the last 0.3 s) whose takes match the last
        second: the person's own voice confirms what the network was unsure of (returned as if at
        its threshold)."""
        if self.enrollment is None:
            return None
        leaning = np.max(self._leaning, axis=0) if self._leaning else smooth
        for phrase in sorted(self._index, key=lambda p: -leaning[self._index[p]]):
            if leaning[self._index[phrase]] < self._floors[phrase]:
                continue
            if self.enrollment.matches(phrase, self.window()):
                return phrase, self._thresholds[phrase]
        return None
