"""Train the learned keyword spotter (voicecoach/data/spotter.npz), reproducibly.

Data: espeak-ng speech in the `tune` split's voices only (bench/make_speech.py keeps the
`test` split's voices for measuring), with reverb and noise: each keyword alone and at the end
of a carrier phrase; negatives are the confusable words, counting, everyday phrases and noise.
People's recordings (../shared/speech) are never trained on: they measure.
Usage: .venv/bin/python bench/train_spotter.py [--per-word N] [--epochs N]
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from make_speech import CARRIERS, CONFUSABLES, VOICES, synth, trim  # noqa: E402
from runner import people  # noqa: E402

from voicecoach.audio import FRAME, RATE, read_wav  # noqa: E402
from voicecoach.features import logmel  # noqa: E402
from voicecoach.learned import CONTEXT, Model, window_vector  # noqa: E402
from voicecoach.listening import default_keywords  # noqa: E402

EVERYDAY = (
    "okay", "I'm ready", "left leg", "right leg", "breathe in", "hold on", "one moment", "how long",
    "this is good", "my back", "stretch", "again", "hello", "thank you", "yes", "no", "maybe",
    "that's fine", "a little tight", "feels good", "paper", "plane", "pay", "made", "same",
    "sun", "nut", "hum", "bus", "birds", "top", "shop", "step", "stock", "post", "paws",
    "weight", "wake", "rest", "peanut", "pending", "panel", "paint it", "name it", "numbers",
    "come on", "nothing", "thinking", "tinkle", "single", "pinch", "needle work", "spins",
    "her", "hearts", "hers", "first", "purse", "bump", "dumb", "gum", "some", "plum",
    "cause", "paused it", "post it", "ways", "white", "weight a bit", "raise", "pies",
    "repair", "report", "reef", "peat", "resort", "consume", "assume", "continent", "contain",
    "my leg is fine", "next one", "good morning", "what time is it", "turn it up", "music",
)
COUNT_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen "
               "fourteen fifteen twenty").split()
POSITIVE_ENDS = (0.02, 0.06, 0.10, 0.14, 0.18, 0.24)
"""Window ends after the keyword's end (s) labelled as that keyword (labelling only windows
0.1-0.3 s after the end lost recall and did not separate "pain" from "paint": measured)."""
AFTER = (0.55, 0.7, 0.85)
"""Window ends this long after a keyword labelled as nothing: the word must just have ended."""


def reverb_and_noise(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Gain, room reverb (FFT convolution) and noise at a random SNR, as make_speech.degrade."""
    y = x.astype(np.float64) * 10 ** (rng.uniform(-15, 0) / 20)
    if rng.random() < 0.7:
        n = int(rng.uniform(0.15, 0.6) * RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.15, 0.5)
        size = 1 << int(np.ceil(np.log2(len(y) + n)))
        wet = np.fft.irfft(np.fft.rfft(y, size) * np.fft.rfft(ir, size), size)[:len(y) + n // 2]
        y = wet * (np.abs(y).max() / max(np.abs(wet).max(), 1e-9))
    lead, tail = int(rng.uniform(1.0, 1.4) * RATE), int(0.9 * RATE)
    y = np.concatenate([np.zeros(lead), y, np.zeros(tail)])
    snr = rng.choice([30.0, 20.0, 15.0, 10.0, 5.0])
    noise = np.cumsum(rng.standard_normal(len(y))) if rng.random() < 0.5 else rng.standard_normal(len(y))
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    level = np.mean(y[lead:lead + len(x)] ** 2)
    noise *= np.sqrt(level / 10 ** (snr / 10) / max(np.mean(noise ** 2), 1e-9))
    return np.clip(y + noise, -32768, 32767).astype(np.int16), lead


def render(job: tuple[int, str, str]) -> tuple[str, np.ndarray, float]:
    """(label, audio, keyword end in s or -1) for one planned text in a random tune voice."""
    n, label, text = job
    rng = np.random.default_rng([11, n])
    accents, variants = VOICES["tune"]
    voice = rng.choice(accents) + rng.choice(variants)
    speech = trim(synth(text, voice, int(rng.integers(110, 211)), int(rng.integers(25, 76))))
    audio, lead = reverb_and_noise(speech, rng)
    return label, audio, ((lead + len(speech)) / RATE if label else -1.0)


def plan(per_word: int, seed: int = 11) -> list[tuple[int, str, str]]:
    rng = np.random.default_rng(seed)
    texts: list[tuple[str, str]] = []
    ending = [c for c in CARRIERS if c.endswith("{w}")]
    for k in default_keywords():
        for i in range(per_word):
            texts.append((k.phrase, k.phrase if i % 2 == 0 else rng.choice(ending).format(w=k.phrase)))
    for w in CONFUSABLES:
        texts += [("", w)] * max(per_word // 8, 3)
    for phrase in EVERYDAY:
        texts += [("", phrase)] * 3
    for _ in range(per_word * 2):
        start = int(rng.integers(0, len(COUNT_WORDS) - 4))
        texts.append(("", ", ".join(COUNT_WORDS[start:start + int(rng.integers(1, 5))])))
    return [(n, label, text) for n, (label, text) in enumerate(texts)]


def people_negatives(rng: np.random.Generator) -> list[tuple[str, np.ndarray, float]]:
    """The `train` half of people's words, and one speaker counting (his digits in runs), each
    with noise: synthetic voices alone taught the network that anything human was a keyword."""
    clips = []
    for path in people("words", "train"):
        for _ in range(2):
            clips.append(("", *_noisy(read_wav(path), rng)))
    digits = people("digits", "train")
    gap = np.zeros(int(0.25 * RATE), np.int16)
    for _ in range(120):
        run = [read_wav(digits[i]) for i in rng.choice(len(digits), int(rng.integers(2, 7)))]
        clips.append(("", *_noisy(np.concatenate([x for d in run for x in (d, gap)]), rng)))
    return clips


def _noisy(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    audio, _ = reverb_and_noise(x, rng)
    return audio, -1.0


def examples(clips, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Window vectors and label indices from rendered clips."""
    xs, ys = [], []
    for label, audio, end in clips:
        feats = logmel(audio)
        ends: list[tuple[float, int]] = []
        if label:
            ends += [(end + d, labels.index(label)) for d in POSITIVE_ENDS]
            ends += [(end + d, 0) for d in AFTER]
            ends += [(t, 0) for t in np.arange(1.0, end - 1.0, 0.15)]   # before the phrase
        else:
            ends += [(t, 0) for t in np.arange(1.0, len(audio) / RATE, 0.1)]
        for t, y in ends:
            i = int(round(t * RATE / FRAME))
            if CONTEXT <= i <= len(feats):
                xs.append(window_vector(feats[i - CONTEXT:i]))
                ys.append(y)
    return np.array(xs, np.float32), np.array(ys)


def train(x: np.ndarray, y: np.ndarray, classes: int, hidden: int, epochs: int, seed: int = 0):
    """Adam on class-balanced softmax cross-entropy; returns (mean, std, w1, b1, w2, b2)."""
    rng = np.random.default_rng(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    xs = (x - mean) / std
    params = [rng.normal(0, np.sqrt(2 / xs.shape[1]), (xs.shape[1], hidden)), np.zeros(hidden),
              rng.normal(0, np.sqrt(1 / hidden), (hidden, classes)), np.zeros(classes)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    counts = np.bincount(y, minlength=classes)
    weight = (len(y) / (classes * np.maximum(counts, 1)))[y]   # balanced (half-way lost recall)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(y))
        for b in range(0, len(y), 256):
            idx = order[b:b + 256]
            xb = xs[idx] * (rng.random(xs[idx].shape) > 0.1)          # input dropout
            h = np.maximum(xb @ params[0] + params[1], 0)
            z = h @ params[2] + params[3]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            g = p.copy()
            g[np.arange(len(idx)), y[idx]] -= 1
            g *= weight[idx][:, None] / len(idx)
            dh = (g @ params[2].T) * (h > 0)
            grads = [xb.T @ dh + 1e-4 * params[0], dh.sum(0), h.T @ g + 1e-4 * params[2], g.sum(0)]
            step += 1
            for i, gr in enumerate(grads):
                m[i] = 0.9 * m[i] + 0.1 * gr
                v[i] = 0.999 * v[i] + 0.001 * gr ** 2
                params[i] -= 1e-3 * (m[i] / (1 - 0.9 ** step)) / (np.sqrt(v[i] / (1 - 0.999 ** step)) + 1e-8)
        print(f"epoch {epoch + 1}/{epochs}", flush=True)
    return mean, std, *params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-word", type=int, default=150, help="clips per keyword")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--threshold", type=float, default=0.97)
    ap.add_argument("--out", type=Path, default=ROOT / "voicecoach" / "data" / "spotter.npz")
    args = ap.parse_args()
    labels = [""] + [k.phrase for k in default_keywords()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        clips = list(pool.map(render, plan(args.per_word)))
    clips += people_negatives(np.random.default_rng(12))
    x, y = examples(clips, labels)
    print(f"{len(clips)} clips, {len(y)} windows, {np.bincount(y).tolist()} per label", flush=True)
    mean, std, w1, b1, w2, b2 = train(x, y, len(labels), args.hidden, args.epochs)
    model = Model(tuple(labels), mean.astype(np.float32), std.astype(np.float32), w1.astype(np.float32),
                  b1.astype(np.float32), w2.astype(np.float32), b2.astype(np.float32), args.threshold)
    accuracy = float(np.mean(model.probabilities(x).argmax(axis=1) == y))
    print(f"training accuracy {accuracy:.3f}; wrote {args.out}")
    model.save(args.out)


if __name__ == "__main__":
    main()
