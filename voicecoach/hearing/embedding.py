"""Speech embeddings, streamed 10 ms at a time: openWakeWord's frozen front end (a mel
spectrogram, then Google's speech-embedding network; ONNX files in data/, Apache-2.0, see
data/EMBEDDING-NOTICE.txt).

The embedding network learned from a great deal of real speech what the log-mel network
(learned.py) only sees in synthetic voices; a small head over its output (trained by
bench/train_head.py) heard people's other words and counting less often, and its scores
blended into the log-mel network's raise recall and lower false alarms together
(bench/hearing.py). `clip()` gives a whole clip's embeddings exactly as the stream would.
"""

from __future__ import annotations

from importlib import resources
from typing import List, Optional, Tuple

import numpy as np

from voicecoach.audio import FRAME, RATE

MEL_SPAN = 512          # samples under one mel row (rows every FRAME = 10 ms)
MEL_HISTORY = MEL_SPAN - FRAME
MEL_ROWS = 76           # mel rows under one embedding (0.775 s)
STRIDE = 8              # frames between embeddings (80 ms: each costs ~1 ms of a core here)
STEPS = 16              # embeddings the head sees (2 s of sound)
LEAD = 2.0              # seconds of silence a stream starts from, so the head has its 2 s at once
DITHER = 2.0            # int16 steps of noise: digital silence never reaches the mel model as zeros
DIMS = 96
BATCH = 64              # windows per embedding run for a whole clip (a stream runs one at a time:
                        # 16 at once for its 2 s lead held 14 MB more for the session's life)


def available() -> bool:
    """Whether onnxruntime runs here: it has no build for 32-bit ARM (a Pi on a 32-bit OS), where
    the learned spotter hears with its log-mel nets alone (learned.Model.nets_alone)."""
    try:
        import onnxruntime  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _session(name: str):
    """One ONNX session on one thread: the listener shares a Pi with the speaker loop."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    with resources.as_file(resources.files("voicecoach").joinpath(f"data/{name}")) as path:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Embedder:
    """Frames in; every STRIDE frames, the head's input (STEPS, DIMS) out. Pure: the same
    frames after `reset()` give the same numbers (the dither is seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._mel, self._embed = _session("melspectrogram.onnx"), _session("embedding_model.onnx")
        self._primed: Optional[Tuple[dict, np.ndarray, np.ndarray, np.ndarray]] = None
        self.reset()

    def reset(self) -> None:
        """Back to a stream's start: LEAD seconds of silence heard (computed once, then copied:
        a bench resets for every clip)."""
        self._pending: List[np.ndarray] = []
        if self._primed is None:
            self._rng = np.random.default_rng(self.seed)
            self._audio = (DITHER * self._rng.standard_normal(MEL_HISTORY)).astype(np.float32)
            self._rows = np.zeros((0, 32), np.float32)
            self._ring = np.zeros((0, DIMS), np.float32)
            self._feed(np.zeros(int(LEAD * RATE)))
            self._primed = (self._rng.bit_generator.state, self._audio, self._rows, self._ring)
        state, self._audio, self._rows, self._ring = self._primed
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state

    def push(self, frame: np.ndarray) -> Optional[np.ndarray]:
        """Take one 10 ms frame; the head's window when an embedding is due, else None."""
        self._pending.append(frame)
        if len(self._pending) < STRIDE:
            return None
        block, self._pending = np.concatenate(self._pending), []
        self._feed(block)
        return self._ring.copy()

    def clip(self, samples: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """(embeddings, the time in s each one's sound ends) for a whole clip heard from
        `reset()`, as the stream gives them every STRIDE frames, after the STEPS - 1 that the
        stream starts with (their times <= 0): embeddings[i - STEPS + 1:i + 1] is the
        head's window at embedding i (training uses this)."""
        self.reset()
        n = len(samples) // (STRIDE * FRAME) * STRIDE * FRAME
        self._ring = self._ring[1:]          # the clip's first embedding completes the first window
        self._feed(np.asarray(samples[:n]), keep=None)
        ends = (np.arange(len(self._ring)) - (STEPS - 2)) * STRIDE * FRAME / RATE
        out = self._ring
        self.reset()
        return out, ends

    def _feed(self, samples: np.ndarray, keep: Optional[int] = STEPS) -> None:
        """Dither, a mel row per frame, an embedding per STRIDE rows; keep the history each
        needs (all embeddings if keep is None). `samples` is whole frames: the mel history is
        always MEL_HISTORY samples, so rows fall on frame ends."""
        x = np.asarray(samples, np.float32) + DITHER * self._rng.standard_normal(len(samples)).astype(np.float32)
        audio = np.concatenate([self._audio, x])
        rows = self._mel.run(None, {"input": audio[None]})[0].reshape(-1, 32) / 10 + 2
        self._rows = np.concatenate([self._rows, rows.astype(np.float32)])
        self._audio = audio[-MEL_HISTORY:]
        due = [e for e in range(MEL_ROWS, len(self._rows) + 1) if (len(self._rows) - e) % STRIDE == 0]
        if due:
            windows = np.stack([self._rows[e - MEL_ROWS:e] for e in due])[..., None]
            batch = BATCH if keep is None else 1     # a stream's lead one by one: its peak memory
            vectors = np.concatenate([self._embed.run(None, {"input_1": windows[b:b + batch]})[0].reshape(-1, DIMS)
                                      for b in range(0, len(windows), batch)])
            self._ring = np.concatenate([self._ring, vectors])
            if keep is not None:
                self._ring = self._ring[-keep:]
        self._rows = self._rows[-(MEL_ROWS - 1):]
