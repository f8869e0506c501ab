"""Train the speech-embedding head blended into the learned spotter (voicecoach/data/spotter.npz).

The same clips as bench/train_spotter.py (its tune-split voices, carriers, confusables, counting,
everyday phrases and the `train` half of people's recordings), each heard from a fresh stream
and followed by a second of silence, through voicecoach.hearing.embedding.Embedder; a small dense head
over 16 embeddings (2 s of sound, one every 80 ms) learns the same labels: a keyword's end 0-0.26 s ago, nothing
from 0.5 s after it or a second before it, nothing anywhere in a clip without one. The head is
written into the packaged model beside its log-mel nets, with the share it gets and the
threshold. Needs PyTorch for training (`pip install torch`); the product runs it in numpy.
Usage: .venv/bin/python bench/train_head.py [--blend 0.3] [--threshold 0.36]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from train_spotter import exported, fit, rendered  # noqa: E402

from voicecoach.audio import RATE  # noqa: E402
from voicecoach.hearing.embedding import DIMS, STEPS, Embedder  # noqa: E402
from voicecoach.hearing.learned import Model, Net  # noqa: E402

POSITIVE = (0.0, 0.26)      # s after the keyword's end: the keyword
AFTER, BEFORE = 0.5, -1.0   # from this long after it, and before this: nothing
OUT = ROOT / "bench" / "out"

_embedder = None


def clips(per_word: int) -> dict:
    """Rendered training clips (cached: rendering is most of the time; the data is seeded)."""
    cache = OUT / f"train-clips-v4-{per_word}.npz"
    if not cache.exists():
        made = rendered(per_word)
        np.savez(cache, audio=np.concatenate([a for _, a, _ in made]), sizes=np.array([len(a) for _, a, _ in made]),
                 labels=np.array([label for label, _, _ in made]), ends=np.array([e for _, _, e in made]))
    return dict(np.load(cache))


def _init() -> None:
    global _embedder
    _embedder = Embedder()


def _embed(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert _embedder is not None
    emb, ends = _embedder.clip(np.concatenate([audio, np.zeros(RATE, np.int16)]))
    return emb.astype(np.float16), ends.astype(np.float32)


def embeddings(data: dict, per_word: int) -> dict:
    """Every clip's embeddings (cached; ~15 min on 2 cores)."""
    cache = OUT / f"train-embeddings-v4-{per_word}.npz"
    if not cache.exists():
        offsets = np.concatenate([[0], np.cumsum(data["sizes"])])
        audio = (data["audio"][offsets[i]:offsets[i + 1]] for i in range(len(data["sizes"])))
        with get_context("spawn").Pool(2, initializer=_init) as pool:
            done = pool.map(_embed, audio, chunksize=16)
        np.savez(cache, emb=np.concatenate([e for e, _ in done]), t=np.concatenate([t for _, t in done]),
                 lens=np.array([len(e) for e, _ in done]))
    return dict(np.load(cache))


def windows(data: dict, emb: dict, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each training window's last embedding, label)."""
    offsets = np.concatenate([[0], np.cumsum(emb["lens"])])
    idx, ys = [], []
    for c, (label, end) in enumerate(zip(data["labels"], data["ends"])):
        ks = np.arange(offsets[c] + STEPS - 1, offsets[c + 1])
        if not label:
            idx.append(ks)
            ys.append(np.zeros(len(ks), int))
            continue
        rel = emb["t"][ks] - end
        pos, neg = (rel >= POSITIVE[0]) & (rel <= POSITIVE[1]), (rel >= AFTER) | (rel <= BEFORE)
        idx += [ks[pos], ks[neg]]
        ys += [np.full(pos.sum(), labels.index(str(label))), np.zeros(neg.sum(), int)]
    return np.concatenate(idx), np.concatenate(ys)


def train(vectors: np.ndarray, idx: np.ndarray, y: np.ndarray, labels: list[str], epochs: int,
          hidden: int, seed: int, ratio: int = 4, negative_weight: float = 1.0) -> Net:
    """AdamW on class-balanced cross-entropy (all keyword windows and `ratio` times as many
    others each epoch), with dropout and a little noise on the embeddings; exported to numpy."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    table = torch.from_numpy(vectors.astype(np.float32))
    span = torch.arange(-(STEPS - 1), 1)

    def batch(i: np.ndarray) -> torch.Tensor:
        return table[torch.from_numpy(idx[i])[:, None] + span]

    sample = batch(rng.choice(len(y), min(len(y), 20000), replace=False))
    mean, std = sample.mean(dim=(0, 1)), sample.std(dim=(0, 1)) + 1e-3
    dense = nn.Sequential(nn.Linear(DIMS * STEPS + DIMS, hidden), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, len(labels)))

    def forward(x: torch.Tensor) -> torch.Tensor:      # as Net.probabilities with no convolutions
        h = (x - mean) / std
        return dense(torch.cat([h.transpose(1, 2).flatten(1), h.amax(dim=1)], dim=1))

    def noisy(i: np.ndarray) -> torch.Tensor:
        x = batch(i)
        return x + 0.1 * torch.randn_like(x) * std

    dense.train()
    fit(forward, dense.parameters(), noisy, y, labels, epochs, rng, lr=1e-3, peak=2e-3, decay=1e-2, ratio=ratio,
        negative_weight=negative_weight)
    dense.eval()

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)
    layers = [m for m in dense if isinstance(m, nn.Linear)]
    net = Net(arr(mean), arr(std), (), tuple((arr(m.weight.T), arr(m.bias)) for m in layers), STEPS)
    return exported(net, forward, batch(rng.choice(len(y), 64)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-word", type=int, default=300, help="clips per keyword (as train_spotter.py)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blend", type=float, default=0.3, help="the head's share of the blended score")
    ap.add_argument("--threshold", type=float, default=0.36, help="threshold on the blended score")
    ap.add_argument("--out", type=Path, default=ROOT / "voicecoach" / "data" / "spotter.npz")
    args = ap.parse_args()
    model = Model.load()
    labels = list(model.labels)
    data = clips(args.per_word)
    emb = embeddings(data, args.per_word)
    idx, y = windows(data, emb, labels)
    print(f"{len(y)} windows, {np.bincount(y, minlength=len(labels)).tolist()} per label", flush=True)
    head = train(emb["emb"], idx, y, labels, args.epochs, args.hidden, args.seed)
    replace(model, head=(head,), blend=args.blend, threshold=args.threshold).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
