"""Train the speech-embedding head on neural voices and real people (the openWakeWord recipe:
frozen speech embeddings, a small head, very many negatives), from bench/make_training_data.py's
`train` split only: Kokoro's training voices and their blends saying the words alone, ending a
phrase and inside sentences, their confusables, counting, everyday sentences and the coach's
lines; the training callers of the WUW telephone corpus (running speech), the training
speakers of Speech Commands (their "stop" as positives, every other word as a negative), one
person's spoken digits run together; all with room reverb, the training split's real background
noise, speed and sometimes a telephone band. Each augmented clip's embeddings are cached in
DATA/features/ (made once; a larger data set only adds clips).

Writes a model with the packaged log-mel nets and the new head (blend and threshold chosen on
the `tune` split by bench/choose_blend.py, never on `test`).
Usage: python bench/train_head_real.py [--data DIR] [--epochs N] [--out NPZ]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from hearing_real import DATA, manifest, noise_bank  # noqa: E402
from make_speech import background, room  # noqa: E402
import over_coach  # noqa: E402
from train_head import train  # noqa: E402

from voicecoach.audio import FRAME, RATE, read_wav, resample  # noqa: E402
from voicecoach.hearing.embedding import STEPS, STRIDE, Embedder  # noqa: E402
from voicecoach.hearing.learned import Model  # noqa: E402

POSITIVE = (0.0, 0.26)      # s after the keyword's end: the keyword (as bench/train_head.py)
AFTER, BEFORE = 0.5, -1.0   # from this long after it, and before this: nothing
COPIES = {"kokoro keyword": 3, "kokoro other": 1, "stop": 8, "word": 2, "running": 2, "digits": 1, "noise": 1}
"""Augmented copies per clip, by kind: the rare real "stop" most, running speech twice."""
OVER_COACH_DB = (-6.0, 12.0)
"""A clip over the coach's voice (--overlap, bench/over_coach.py): the person this many dB above it."""


def augment(x: np.ndarray, key: str, noises: list) -> tuple:
    """(audio, lead s, stretch): speed ±10 % (60 %), a telephone band (15 %), gain, reverb (60 %),
    0.3-1.0 s of the room before and 0.3 s after, a training-split background noise at 5-40 dB."""
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    stretch = 1.0
    if rng.random() < 0.6:
        factor = rng.uniform(0.9, 1.1)
        y = resample(x, RATE, int(RATE * factor))
        stretch = len(y) / max(len(x), 1)
        x = y
    if rng.random() < 0.15:
        x = resample(resample(x, RATE, 8000), 8000, RATE)
    y = x.astype(np.float64) * 10 ** (rng.uniform(-20, 0) / 20)
    if rng.random() < 0.6:
        y = room(y, rng, (0.1, 0.7), (0.1, 0.5))
    lead = int(rng.uniform(0.3, 1.0) * RATE)
    level = max(np.mean(y ** 2), 1.0)
    y = np.concatenate([np.zeros(lead), y, np.zeros(int(0.3 * RATE))])
    if noises:
        y = y + background(len(y), rng, noises, level, (40.0, 30.0, 20.0, 15.0, 10.0, 5.0))
    return np.clip(y, -32768, 32767).astype(np.int16), lead / RATE, stretch


def jobs(items: list, overlap: int = 0) -> list:
    """(key, path, label, keyword end in the clean clip or -1, kind) for every augmented copy;
    `overlap` more of each Kokoro clip over the coach's voice (key "...#oN")."""
    out = []
    for x in items:
        if x["split"] != "train":
            continue
        if x["source"] == "kokoro":
            kind = "kokoro keyword" if x["kind"] == "keyword" else "kokoro other"
            label = x["word"] if x["kind"] == "keyword" else ""
            end = x["word_end"] if label else -1.0
        elif x["source"] in ("commands", "commands-v2"):
            if x["source"] == "commands" and x["word"] == "stop":
                continue               # bench/hearing.py measures on all of v0.01's "stop"
            if x["kind"] == "noise":
                kind, label, end = "noise", "", -1.0
            else:
                kind = "stop" if x["word"] == "stop" else "word"
                label, end = ("stop", -2.0) if kind == "stop" else ("", -1.0)   # -2: find the word's end
        elif x["source"] == "wuw":
            if x["keywords"]:
                continue               # says a listened-for word somewhere: no time, so not a negative
            kind, label, end = "running", "", -1.0
        else:
            continue
        for c in range(COPIES[kind]):
            out.append((f"{x.get('id', x['path'])}#{c}", x["path"], label, end, kind))
        if x["source"] == "kokoro":
            for c in range(overlap):
                out.append((f"{x.get('id', x['path'])}#o{c}", x["path"], label, end, kind + " over coach"))
    return out


def word_end(x: np.ndarray) -> float:
    """The last loud 10 ms frame of a one-word clip (within 30 dB of its loudest), in s."""
    frames = len(x) // FRAME
    e = (x[:frames * FRAME].astype(np.float64).reshape(frames, FRAME) ** 2).mean(axis=1)
    loud = np.flatnonzero(e > e.max() * 1e-3)
    return float((loud[-1] + 1) * FRAME / RATE) if len(loud) else -1.0


_embedder = None
_noise = None
_coach: list = []


def _init(data: str, overlap: bool) -> None:
    global _embedder, _noise, _coach
    _embedder = Embedder()
    _noise = noise_bank(manifest(Path(data)), "train", Path(data))
    _coach = over_coach.bank() if overlap else []


def feature_path(data: Path, key: str) -> Path:
    return Path(data) / "features" / "train" / f"{zlib.crc32(key.encode()):08x}.npz"


def _features(args: tuple) -> tuple:
    key, path, label, end, data = args
    target = feature_path(Path(data), key)
    if target.exists():
        z = np.load(target)
        return key, float(z["end"])
    clean = read_wav(Path(data) / path)
    if end == -2.0:
        end = word_end(clean)
    audio, lead, stretch = augment(clean, key, _noise)
    if "#o" in key:
        audio = over_coach.mix(audio, key, _coach, OVER_COACH_DB)
    emb, _ = _embedder.clip(np.concatenate([audio, np.zeros(RATE, np.int16)]))
    at = lead + end * stretch if end >= 0 else -1.0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp.npz")
    np.savez(tmp, emb=emb.astype(np.float16), end=np.float32(at))
    tmp.rename(target)
    return key, at


def features(data: Path, todo: list, workers: int) -> dict:
    """key -> (embeddings, keyword end s) for every job (made where missing)."""
    t0 = time.time()
    args = [(k, p, lab, e, str(data)) for k, p, lab, e, _ in todo]
    overlap = any("#o" in k for k, *_ in todo if not feature_path(data, k).exists())
    with get_context("spawn").Pool(workers, initializer=_init, initargs=(str(data), overlap)) as pool:
        for n, _ in enumerate(pool.imap_unordered(_features, args, chunksize=16)):
            if n % 2000 == 0:
                print(f"features: {n}/{len(args)} in {time.time() - t0:.0f} s", flush=True)
    out = {}
    for k, *_ in todo:
        z = np.load(feature_path(data, k))
        out[k] = (z["emb"], float(z["end"]))
    return out


def windows(todo: list, feats: dict, labels: list) -> tuple:
    """All embeddings end to end, and (index of each training window's last embedding, label)."""
    vectors, idx, ys, offset = [], [], [], 0
    for key, _, label, _, _ in todo:
        emb, end = feats[key]
        ends = (np.arange(len(emb)) - (STEPS - 2)) * STRIDE * FRAME / RATE
        ks = np.arange(STEPS - 1, len(emb))
        if label:
            rel = ends[ks] - end
            pos, neg = (rel >= POSITIVE[0]) & (rel <= POSITIVE[1]), (rel >= AFTER) | (rel <= BEFORE)
            idx += [offset + ks[pos], offset + ks[neg]]
            ys += [np.full(pos.sum(), labels.index(label)), np.zeros(neg.sum(), int)]
        else:
            idx.append(offset + ks)
            ys.append(np.zeros(len(ks), int))
        vectors.append(emb)
        offset += len(emb)
    return np.concatenate(vectors), np.concatenate(idx), np.concatenate(ys)


def espeak(per_word: int, cache: Path, labels: list) -> tuple:
    """The espeak-ng / flite clips the packaged head was trained on (bench/train_head.py, which
    renders and caches them; here under `cache`): more synthesisers beside Kokoro."""
    import train_head
    train_head.OUT = cache
    cache.mkdir(parents=True, exist_ok=True)
    data = train_head.clips(per_word)
    emb = train_head.embeddings(data, per_word)
    idx, y = train_head.windows(data, emb, labels)
    return emb["emb"], idx, y


def hardest(head, vectors: np.ndarray, idx: np.ndarray, y: np.ndarray, floor: float) -> np.ndarray:
    """The negative windows (indices of their last embedding) the head gives any keyword at least
    `floor`: hard-negative mining, so the next round sees the running speech it fired on."""
    negatives = idx[y == 0]
    span = np.arange(-(STEPS - 1), 1)
    table = vectors.astype(np.float32)
    out = []
    for b in range(0, len(negatives), 8192):
        at = negatives[b:b + 8192]
        p = head.probabilities(table[at[:, None] + span])
        out.append(at[1 - p[:, 0] >= floor])
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one head per seed, averaged")
    ap.add_argument("--ratio", type=int, default=10, help="other windows per keyword window each epoch")
    ap.add_argument("--negative-weight", type=float, default=1.0, help="a false alarm costs this many misses")
    ap.add_argument("--mine", type=int, default=0, help="rounds of hard-negative mining")
    ap.add_argument("--hard", type=float, default=0.2, help="a negative window scoring a keyword this high is hard")
    ap.add_argument("--hard-copies", type=int, default=4, help="times each hard negative is added again")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--made-only", action="store_true", help="train on the clips already embedded (while more are made)")
    ap.add_argument("--overlap", type=int, default=0, help="copies of each Kokoro clip over the coach's voice")
    ap.add_argument("--espeak", type=int, default=0, help="also bench/train_head.py's clips, this many per word")
    ap.add_argument("--out", type=Path, default=DATA.parent / "models" / "head-real.npz")
    args = ap.parse_args()
    model = Model.load()
    labels = list(model.labels)
    todo = jobs(manifest(args.data), args.overlap)
    if args.made_only:
        todo = [j for j in todo if feature_path(args.data, j[0]).exists()]
    kinds = {}
    for *_, kind in todo:
        kinds[kind] = kinds.get(kind, 0) + 1
    print(f"{len(todo)} augmented clips: {kinds}", flush=True)
    feats = features(args.data, todo, args.workers)
    if args.features_only:
        return
    vectors, idx, y = windows(todo, feats, labels)
    if args.espeak:
        more, more_idx, more_y = espeak(args.espeak, args.data.parent / "espeak", labels)
        idx, y = np.concatenate([idx, more_idx + len(vectors)]), np.concatenate([y, more_y])
        vectors = np.concatenate([vectors, more.astype(vectors.dtype)])
    print(f"{len(y)} windows, {np.bincount(y, minlength=len(labels)).tolist()} per label", flush=True)
    import torch
    torch.set_num_threads(args.threads)
    heads = []
    for seed in args.seeds:              # one head per seed; the model averages them
        head = train(vectors, idx, y, labels, args.epochs, args.hidden, seed, args.ratio, args.negative_weight)
        for round_ in range(args.mine):
            hard = hardest(head, vectors, idx, y, args.hard)
            print(f"round {round_ + 1}: {len(hard)} negative windows scored a keyword >= {args.hard}, "
                  f"each added {args.hard_copies} more times", flush=True)
            more = np.concatenate([idx] + [hard] * args.hard_copies)
            ys = np.concatenate([y, np.zeros(len(hard) * args.hard_copies, y.dtype)])
            head = train(vectors, more, ys, labels, args.epochs, args.hidden, seed, args.ratio, args.negative_weight)
        heads.append(head)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    replace(model, head=tuple(heads)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
