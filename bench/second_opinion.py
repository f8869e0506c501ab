"""Would a second opinion on each candidate remove false stops without losing safety words?

The learned spotter's detections (bench/hearing_real.py's traces, decided as LearnedSpotter
decides) are each re-decoded by pocketsphinx's grammar verifier (voicecoach.hearing.verifier):
the clip's audio around the candidate, where the keyword must beat competing words. Counts, per
set, how many candidates the verifier keeps: true keywords (should all stay) and false stops.
Usage: python bench/second_opinion.py [--split tune] [--threshold 0.1] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import hearing_real as hr  # noqa: E402
import over_coach  # noqa: E402

from voicecoach.audio import RATE, read_wav  # noqa: E402
from voicecoach.hearing.learned import Model  # noqa: E402
from voicecoach.hearing.sphinx import VERIFIER_MODEL  # noqa: E402
from voicecoach.hearing.verifier import Verifier, VerifierSettings  # noqa: E402
from voicecoach.hearing.words import default_keywords  # noqa: E402

SETS = ("kokoro_keyword", "kokoro_over_coach", "people_stop", "people_words", "kokoro_confusable",
        "kokoro_sentence", "kokoro_counting", "wuw_running", "ljspeech_running")
WINDOWS = ((-0.8, 0.25), (-0.6, 0.15), (-1.0, 0.3), (-0.45, 0.25))
"""Segments re-decoded, seconds relative to the candidate's time (it fires near the word's end)."""

_verifier: Optional[Verifier] = None


def _init() -> None:
    global _verifier
    _verifier = Verifier([k.phrase for k in default_keywords()], VerifierSettings(), VERIFIER_MODEL)


def audio_of(name: str, clip: dict, split: str, data: Path) -> np.ndarray:
    """The clip as it was traced (in a room; with the coach across it for over-coach)."""
    key = clip.get("id", clip["path"])
    audio = read_wav(data / clip["path"])
    if name.startswith("kokoro"):
        audio, _ = hr.degrade(audio, key, hr._noises(split, str(data)))
    if name == "kokoro_over_coach":
        if not hr._coach:
            hr._coach.extend(over_coach.bank())
        audio = over_coach.mix(audio, key, hr._coach, hr.OVER_COACH_DB)
    return audio


def verdicts(job: tuple) -> list:
    """For each candidate (phrase, action, t): the word each window decoded."""
    name, clip, split, data, found = job
    assert _verifier is not None
    audio = audio_of(name, clip, split, Path(data))
    out = []
    for phrase, action, t in found:
        words = []
        for a, b in WINDOWS:
            i, j = max(0, int((t + a) * RATE)), min(len(audio), int((t + b) * RATE))
            words.append(_verifier.word(audio[i:j]) if j - i > 1600 else None)
        out.append((phrase, action, t, words))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=hr.DATA)
    ap.add_argument("--split", default="tune", choices=("test", "tune"))
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threshold", type=float, help="candidate threshold for every stopping action")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    model = Model.load(args.model)
    action = {k.phrase: k.action for k in default_keywords()}
    every = {a: model.threshold_for(a) for a in set(action.values())}
    if args.threshold is not None:
        every.update(safety=args.threshold, stop=args.threshold)
    data = hr.load_all(args.data, args.split, args.workers, args.model, SETS, pinned=True)
    heads = hr.head_table(model, data, hr.primed())
    jobs = []
    for name, (clips, trs) in data.items():
        if name == "people_counting":
            continue
        for c, tr, hd in zip(clips, trs, heads[name]):
            found = [f for f in hr.decide(model, tr, hd, model.blend, every) if f[1] in hr.STOPS]
            if found:
                jobs.append((name, c, args.split, str(args.data), found))
    t0 = time.time()
    with get_context("spawn").Pool(args.workers, initializer=_init) as pool:
        out = pool.map(verdicts, jobs, chunksize=2)
    print(f"verified {sum(len(j[4]) for j in jobs)} candidates in {time.time() - t0:.0f} s", flush=True)
    rows = []
    for (name, c, *_), res in zip(jobs, out):
        for phrase, act, t, words in res:
            truth = None
            if name in ("kokoro_keyword", "kokoro_over_coach"):
                truth = c["action"] == act
            elif name == "people_stop":
                truth = act == "stop"
            else:
                truth = False
            rows.append({"set": name, "id": c.get("id", c["path"]), "phrase": phrase, "action": act, "t": round(t, 2),
                         "true": truth, "words": words})
    summary = {}
    for w in range(len(WINDOWS) + 1):
        label = f"window {WINDOWS[w]}" if w < len(WINDOWS) else "any window"
        keep = Counter()
        total = Counter()
        for r in rows:
            words = r["words"] if w == len(WINDOWS) else [r["words"][w]]
            ok = any(x is not None and action.get(x) == r["action"] for x in words)
            k = f"{r['set']} {'true' if r['true'] else 'false'}"
            total[k] += 1
            keep[k] += ok
        summary[label] = {k: f"{keep[k]}/{total[k]}" for k in sorted(total)}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "rows": rows, "thresholds": every}, indent=0))


if __name__ == "__main__":
    main()
