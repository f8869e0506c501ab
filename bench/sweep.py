"""Sweep the learned spotter's threshold on the `tune` split (never the test split).

For each clip, the highest smoothed score the streaming spotter gives any action (negatives)
or the clip's action (positives), an action's score being the sum of its words' probabilities
as the spotter decides; then recall and false alarms at each threshold, so the
threshold shipped in the model is chosen on data the hearing benchmark does not measure on.
Usage: .venv/bin/python bench/sweep.py [--model PATH] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from runner import manifest  # noqa: E402

from voicecoach.hearing.learned import LearnedSpotter, Model  # noqa: E402
from voicecoach.hearing.words import default_keywords, file_frames  # noqa: E402

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)
_spotter: Optional[LearnedSpotter] = None


def _init(model: Optional[str]) -> None:
    global _spotter
    _spotter = LearnedSpotter(default_keywords(), Model.load(model))


def peak_scores(path: str) -> np.ndarray:
    """Each label's highest smoothed score over the clip, streamed as live audio."""
    assert _spotter is not None
    _spotter.reset()
    labels = _spotter.model.labels
    action = {k.phrase: k.action for k in default_keywords()}
    family = np.array([[i > 0 and j > 0 and action[labels[j]] == action[labels[i]] for j in range(len(labels))]
                       for i in range(len(labels))], float)
    peak = np.zeros(len(labels))
    for frame in file_frames(path):
        for _, smooth in _spotter.scores(frame):
            peak = np.maximum(peak, family @ smooth)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model file (default: the packaged one)")
    ap.add_argument("--quick", action="store_true", help="a third of the clips")
    args = ap.parse_args()
    clips = manifest("tune")[::3 if args.quick else 1]
    with get_context("spawn").Pool(2, initializer=_init, initargs=(args.model,)) as pool:
        peaks = np.array(pool.map(peak_scores, [c["path"] for c in clips], chunksize=8))
    labels = list(Model.load(args.model).labels)
    positive = [c["kind"] == "positive" for c in clips]
    own = np.array([peaks[i, labels.index(c["word"])] if positive[i] else 0.0 for i, c in enumerate(clips)])
    other = peaks[:, 1:].max(axis=1)
    words = sorted({c["word"] for c in clips if c["kind"] == "positive"})
    print("threshold  " + " ".join(f"{w[:8]:>8}" for w in words) + "  FA/clip")
    for th in THRESHOLDS:
        recall = [np.mean([own[i] >= th for i, c in enumerate(clips) if positive[i] and c["word"] == w]) for w in words]
        fa = np.mean([other[i] >= th for i in range(len(clips)) if not positive[i]])
        print(f"{th:9.3f}  " + " ".join(f"{r:8.2f}" for r in recall) + f"  {fa:7.3f}")


if __name__ == "__main__":
    main()
