"""Train the learned keyword spotter (voicecoach/data/spotter.npz), reproducibly.

Data: speech in the `tune` split's voices only (bench/make_speech.py: espeak-ng accents and
variants and CMU flite's voices; the `test` split's voices are kept for measuring), sped up or
slowed (which moves formants as a different vocal tract would), with reverb and noise: each
keyword alone and at the end of a carrier phrase. Negatives: confusable words, counting,
everyday phrases, and the `train` half of people's recordings (bench/runner.people_split).
Training needs PyTorch (`pip install torch`), the product does not: the weights are exported
to numpy (voicecoach/learned.py runs them).
Then bench/train_head.py adds the speech-embedding head to the model it wrote.
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
from make_speech import CARRIERS, CONFUSABLES, VOICES, room, synth, trim  # noqa: E402
from runner import people  # noqa: E402

from voicecoach.audio import FRAME, RATE, read_wav, resample  # noqa: E402
from voicecoach.hearing.features import BANDS, FLOOR, logmel  # noqa: E402
from voicecoach.hearing.learned import CONTEXT, EVERY, POOL, Model, Net  # noqa: E402
from voicecoach.hearing.words import default_keywords  # noqa: E402

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
    "up", "off", "on", "go", "down", "dog", "bed", "bird", "cat", "house", "tree", "wow", "happy",
)
COUNT_WORDS = ("one two three four five six seven eight nine ten eleven twelve thirteen "
               "fourteen fifteen twenty zero").split()
CONTINUATIONS = ("in my leg", "in my back", "now", "please", "it's bad", "right there", "a bit",
                 "again", "down my leg", "here", "for a second", "I think")
POSITIVE_ENDS = (0.02, 0.06, 0.10, 0.14, 0.18, 0.24)
"""Window ends after the keyword's end (s) labelled as that keyword."""
SHORT = ("pain", "numb", "hurts", "stop", "wait")
"""One-syllable keywords, heard least (bench/sweep.py): twice the clips."""
AFTER = (0.55, 0.7, 0.85)
"""Window ends this long after a keyword labelled as nothing: the word must just have ended."""


def reverb_and_noise(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Gain, room reverb (FFT convolution) and noise at a random SNR, as make_speech.degrade."""
    y = x.astype(np.float64) * 10 ** (rng.uniform(-15, 0) / 20)
    if rng.random() < 0.7:
        y = room(y, rng, (0.15, 0.6), (0.15, 0.5))
    lead, tail = int(rng.uniform(1.0, 1.4) * RATE), int(0.9 * RATE)
    y = np.concatenate([np.zeros(lead), y, np.zeros(tail)])
    snr = rng.choice([30.0, 20.0, 15.0, 10.0, 5.0])
    noise = np.cumsum(rng.standard_normal(len(y))) if rng.random() < 0.5 else rng.standard_normal(len(y))
    noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    level = np.mean(y[lead:lead + len(x)] ** 2)
    noise *= np.sqrt(level / 10 ** (snr / 10) / max(np.mean(noise ** 2), 1e-9))
    return np.clip(y + noise, -32768, 32767).astype(np.int16), lead


def perturb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Speed perturbation by ±12 % (played faster or slower, formants and pitch move together),
    and sometimes a telephone band (an 8 kHz Bluetooth headset or cheap USB microphone)."""
    factor = rng.uniform(0.88, 1.12)
    if rng.random() < 0.6:
        x = resample(x, RATE, int(RATE * factor))
    if rng.random() < 0.15:
        x = resample(resample(x, RATE, 8000), 8000, RATE)
    return x


def render(job: tuple[int, str, str]) -> tuple[str, np.ndarray, float]:
    """(label, audio, keyword end in s or -1) for one planned text in a random tune voice; a
    third of the keywords go on into more words ("pain in my leg"), rendered separately in the
    same voice so the keyword's end is known."""
    n, label, text = job
    rng = np.random.default_rng([11, n])
    voice = str(rng.choice(VOICES["tune"]))
    rate, pitch = int(rng.integers(110, 211)), int(rng.integers(25, 76))
    speech = trim(synth(text, voice, rate, pitch))
    ending = len(speech)
    if label and rng.random() < 0.35:
        more = trim(synth(str(rng.choice(CONTINUATIONS)), voice, rate, pitch))
        speech = np.concatenate([speech, np.zeros(int(rng.uniform(0.0, 0.12) * RATE), np.int16), more])
    before = len(speech)
    speech = perturb(speech, rng)
    ending = ending * len(speech) / before                     # where the keyword ends now
    audio, lead = reverb_and_noise(speech, rng)
    return label, audio, ((lead + ending) / RATE if label else -1.0)


def plan(per_word: int, seed: int = 11) -> list[tuple[int, str, str]]:
    rng = np.random.default_rng(seed)
    texts: list[tuple[str, str]] = []
    ending = [c for c in CARRIERS if c.endswith("{w}")]
    for k in default_keywords():
        for i in range(per_word * (2 if k.phrase in SHORT else 1)):
            texts.append((k.phrase, k.phrase if i % 2 == 0 else rng.choice(ending).format(w=k.phrase)))
    for w in CONFUSABLES:
        texts += [("", w)] * max(per_word // 5, 3)
    for phrase in EVERYDAY:
        texts += [("", phrase)] * 6
    for _ in range(per_word * 4):
        start = int(rng.integers(0, len(COUNT_WORDS) - 4))
        texts.append(("", ", ".join(COUNT_WORDS[start:start + int(rng.integers(1, 5))])))
    return [(n, label, text) for n, (label, text) in enumerate(texts)]


def people_negatives(rng: np.random.Generator) -> list[tuple[str, np.ndarray, float]]:
    """The `train` half of people's words, and one speaker counting (his digits in runs), each
    with noise: synthetic voices alone taught the network that anything human was a keyword."""
    clips = []
    for path in people("words", "train"):
        for _ in range(4):
            clips.append(("", reverb_and_noise(perturb(read_wav(path), rng), rng)[0], -1.0))
    digits = people("digits", "train")
    gap = np.zeros(int(0.25 * RATE), np.int16)
    for _ in range(600):          # 200 let "nine" pass for "numb" 8 times in 50 (held-out speaker)
        run = [read_wav(digits[i]) for i in rng.choice(len(digits), int(rng.integers(2, 7)))]
        clips.append(("", reverb_and_noise(np.concatenate([x for d in run for x in (d, gap)]), rng)[0], -1.0))
    return clips


def rendered(per_word: int) -> list[tuple[str, np.ndarray, float]]:
    """Every training clip as (label, audio, keyword end): the plan rendered on both cores, then
    people's negatives (bench/train_head.py trains on the same clips)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        clips = list(pool.map(render, plan(per_word)))
    return clips + people_negatives(np.random.default_rng(12))


def examples(clips, labels: list[str], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All clips' log-mel rows end to end, and (end row, label) of every training window.

    Each clip starts as a stream does after `reset()`: a second of silence rows before it, the
    first window 0.5 s in; half the clips lose up to 0.8 s of their lead, so a word said just
    after the spotter starts is seen too (it was heard less: 0.69 against 0.78 with a lead)."""
    rows, ends, ys, offset = [], [], [], 0
    for label, audio, end in clips:
        crop = int(rng.uniform(0, 0.8) * RATE / FRAME) if rng.random() < 0.5 else 0
        feats = np.concatenate([np.full((CONTEXT, BANDS), np.log(FLOOR)), logmel(audio)[crop:]])
        picks: list[tuple[float, int]] = []
        if label:
            picks += [(end + d, labels.index(label)) for d in POSITIVE_ENDS]
            picks += [(end + d, 0) for d in AFTER]
            picks += [(t, 0) for t in np.arange(0.5, end - 1.0, 0.06)]   # before the phrase
        else:
            picks += [(t, 0) for t in np.arange(0.5, len(audio) / RATE, EVERY * FRAME / RATE)]
        for t, y in picks:
            i = int(round(t * RATE / FRAME)) - crop + CONTEXT
            if CONTEXT + CONTEXT // 2 <= i <= len(feats):
                ends.append(offset + i)
                ys.append(y)
        rows.append(feats.astype(np.float32))
        offset += len(feats)
    return np.concatenate(rows), np.array(ends), np.array(ys)


def train(feats: np.ndarray, ends: np.ndarray, y: np.ndarray, labels: list[str], epochs: int,
          channels: int, threads: int, seed: int) -> Net:
    """One net: AdamW on class-balanced cross-entropy with SpecAugment-style masks, exported to
    numpy (and checked against torch)."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    rows = torch.from_numpy(feats)
    steps = CONTEXT // POOL

    def windows(idx: np.ndarray) -> torch.Tensor:
        pos = torch.from_numpy(ends[idx][:, None] - CONTEXT + np.arange(CONTEXT)[None, :])
        w = rows[pos].reshape(len(idx), steps, POOL, BANDS).mean(dim=2)
        return w - w.mean(dim=1, keepdim=True)

    sample = windows(rng.choice(len(y), min(len(y), 20000), replace=False))
    mean, std = sample.mean(dim=(0, 1)), sample.std(dim=(0, 1)) + 1e-3
    dilations = (1, 2, 4, 8)
    convs = nn.ModuleList([nn.Conv1d(BANDS if i == 0 else channels, channels, 3, dilation=d)
                           for i, d in enumerate(dilations)])
    tail = 8
    dense = nn.Sequential(nn.Linear(channels * (tail + 1), 64), nn.ReLU(), nn.Linear(64, len(labels)))

    def forward(x: torch.Tensor) -> torch.Tensor:
        h = ((x - mean) / std).transpose(1, 2)
        for c in convs:
            h = torch.relu(c(h))
        return dense(torch.cat([h[:, :, -tail:].flatten(1), h.amax(dim=2)], dim=1))

    def augmented(idx: np.ndarray) -> torch.Tensor:
        x = windows(idx)
        f0, fw = rng.integers(0, BANDS), rng.integers(0, 6)
        x[:, :, f0:f0 + fw] = 0.0                                  # a band lost
        t0, tw = rng.integers(0, steps - 4), rng.integers(0, 4)
        x[:, t0:t0 + tw] = 0.0                                     # a moment lost
        return x

    fit(forward, list(convs.parameters()) + list(dense.parameters()), augmented, y, labels, epochs, rng,
        lr=2e-3, peak=3e-3, decay=1e-3)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().numpy().astype(np.float32)
    net = Net(arr(mean), arr(std),
              tuple((arr(c.weight.permute(2, 1, 0)), arr(c.bias), d) for c, d in zip(convs, dilations)),
              ((arr(dense[0].weight.T), arr(dense[0].bias)), (arr(dense[2].weight.T), arr(dense[2].bias))), tail)
    torch.save({"convs": convs.state_dict(), "dense": dense.state_dict()}, ROOT / "bench" / "out" / f"spotter-{seed}.pt")
    return exported(net, forward, windows(rng.choice(len(y), 64)))


def fit(forward, params, batch, y: np.ndarray, labels: list[str], epochs: int, rng: np.random.Generator,
        lr: float, peak: float, decay: float, ratio: int = 4, negative_weight: float = 1.0) -> None:
    """AdamW with a one-cycle schedule on class-balanced cross-entropy (label smoothing 0.05):
    every keyword window and `ratio` times as many others each epoch, 256 at a time; `batch(idx)`
    gives the windows' inputs, augmented. `negative_weight` > 1 makes a false alarm cost more
    than a miss (running speech is most of what a coach hears)."""
    import torch
    from torch import nn
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=decay)
    counts = np.bincount(y, minlength=len(labels))
    positives, negatives = np.flatnonzero(y > 0), np.flatnonzero(y == 0)
    per_epoch = min(len(negatives), ratio * len(positives))
    weight = torch.tensor(per_epoch / (len(labels) - 1) / np.maximum(counts, 1), dtype=torch.float32)
    weight[0] = negative_weight
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, peak, total_steps=epochs * ((len(positives) + per_epoch) // 256 + 1))
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=0.05)
    for epoch in range(epochs):
        order = rng.permutation(np.concatenate([positives, rng.choice(negatives, per_epoch, replace=False)]))
        total = 0.0
        for b in range(0, len(order), 256):
            idx = order[b:b + 256]
            loss = loss_fn(forward(batch(idx)), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs} loss {total / len(order):.4f}", flush=True)


def exported(net: Net, forward, check) -> Net:
    """The numpy net, once it gives what the torch model it came from gives on `check`."""
    import torch
    with torch.no_grad():
        expected = torch.softmax(forward(check), dim=1).numpy()
    assert np.allclose(net.probabilities(check.numpy()), expected, atol=1e-4), "numpy export differs"
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-word", type=int, default=300, help="clips per keyword")
    ap.add_argument("--epochs", type=int, default=18, help="0: only render and cache the data")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="one net per seed, averaged")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine)")
    ap.add_argument("--out", type=Path, default=ROOT / "voicecoach" / "data" / "spotter.npz")
    args = ap.parse_args()
    labels = [""] + [k.phrase for k in default_keywords()]
    cache = ROOT / "bench" / "out" / f"train-windows-v4-{args.per_word}.npz"
    if cache.exists():                      # rendering is most of the time; the data is seeded
        data = np.load(cache)
        feats, ends, y = data["feats"], data["ends"], data["y"]
    else:
        feats, ends, y = examples(rendered(args.per_word), labels, np.random.default_rng(13))
        np.savez(cache, feats=feats, ends=ends, y=y)
    print(f"{len(y)} windows, {np.bincount(y).tolist()} per label", flush=True)
    if args.epochs == 0:
        return
    nets = [train(feats, ends, y, labels, args.epochs, args.channels, args.threads, seed) for seed in args.seeds]
    Model(tuple(labels), tuple(nets), args.threshold, alone=args.threshold).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
