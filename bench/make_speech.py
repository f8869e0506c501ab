"""Generate reproducible synthetic speech for tuning and testing the keyword spotter.

No recordings of people saying "pain" or "numb" exist here, so positives come from espeak-ng,
flite and festival with many voices, rates and pitches, then noise, reverb and gain (clean
synthetic audio is recognised unrealistically). Voices are split (see VOICES): the `tune` split
never shares a voice with the `test` split, so test figures are on voices the tuning never heard.
Needs Debian's espeak-ng, flite, festival and festvox-kdlpc16k (ked).

Writes bench/out/speech/<split>/<kind>/<word>/<n>.wav and bench/out/speech/manifest.json.
Usage: .venv/bin/python bench/make_speech.py [--per-word N] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from voicecoach.audio import RATE, read_wav, write_wav  # noqa: E402
from voicecoach.hearing.words import default_keywords  # noqa: E402

TEST_VARIANTS = ("", "+f3", "+m7", "+Alicia", "+david")
TUNE_VARIANTS = ("", "+f1", "+f2", "+f4", "+f5", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m8",
                 "+Andy", "+Annie", "+anika", "+belinda", "+edward", "+Gene", "+john", "+Lee", "+max",
                 "+Michael", "+norbert", "+steph", "+grandma", "+grandpa", "+klatt", "+klatt3", "+whisper")
VOICES = {
    "tune": [f"espeak:{a}{v}" for a in ("en-us", "en-gb", "en-gb-x-rp", "en-029") for v in TUNE_VARIANTS]
            + [f"flite:{v}" for v in ("kal16", "awb", "rms", "slt")] * 12,
    "test": [f"espeak:{a}{v}" for a in ("en-gb-scotland", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
             for v in TEST_VARIANTS] + ["festival:ked_diphone"] * 5,
}
"""Voices by split, never shared: the `tune` split's espeak accents and variants plus CMU flite's
voices (a second synthesiser, about a third of the draws); the `test` split's other espeak accents and
variants plus festival's ked, a speaker and synthesiser nothing is tuned or trained on."""
CARRIERS = ("ow, {w}", "I feel {w}", "oh that's {w}", "it is {w}", "{w} in my leg")
CONFUSABLES = (
    "paint plain pay main name rain thumb drum number again seven ten "      # from the issue
    "stain spain lane pine hum sung thinking tinkle stock stoop post paw weighed rebuild "
    "continent pens noodles"                                                  # not in the grammar
).split()
COUNTING = ("one two three four five", "six seven eight nine ten", "one, two, three, four",
            "five, six, seven, eight", "nine, ten, eleven, twelve")


@dataclass(frozen=True)
class Clip:
    """One generated clip; word_end is known when the keyword is the last word spoken."""

    path: str
    split: str
    kind: str            # positive | confusable | counting
    word: str
    action: str
    text: str
    word_end: float | None
    voice: str = ""


def synth(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """Speech at 16 kHz from `engine:voice` (espeak-ng, flite or festival); rate in words per
    minute as espeak takes it (175 is normal), pitch 0-99 as espeak takes it."""
    engine, name = voice.split(":", 1)
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", name, "-s", str(rate), "-p", str(pitch), "-w", f.name, text]
            subprocess.run(cmd, check=True, capture_output=True)
        elif engine == "flite":
            cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={175 / rate:.2f}",
                   "--setf", f"int_f0_target_mean={70 + 1.6 * pitch:.0f}", "-t", text, "-o", f.name]
            subprocess.run(cmd, check=True, capture_output=True)
        else:
            scheme = f"(voice_{name}) (Parameter.set 'Duration_Stretch {175 / rate:.2f})"
            subprocess.run(["text2wave", "-eval", scheme, "-o", f.name], input=text.encode(),
                           check=True, capture_output=True)
        return read_wav(f.name)


def trim(x: np.ndarray) -> np.ndarray:
    """Cut espeak's leading/trailing silence so word_end can be measured."""
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 300)
    return x[loud[0]: loud[-1] + 1] if len(loud) else x


def degrade(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Gain, room reverb and background noise at a random SNR; returns (audio, lead samples)."""
    y = x.astype(np.float64) * 10 ** (rng.uniform(-15, 0) / 20)
    if rng.random() < 0.7:
        rt60 = rng.uniform(0.15, 0.6)
        n = int(rt60 * RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.15, 0.5)
        wet = np.convolve(y, ir)[: len(y) + n // 2]
        y = wet * (np.abs(y).max() / max(np.abs(wet).max(), 1e-9))
    lead, tail = int(rng.uniform(0.2, 0.6) * RATE), int(0.6 * RATE)
    y = np.concatenate([np.zeros(lead), y, np.zeros(tail)])
    snr = rng.choice([30.0, 20.0, 15.0, 10.0])
    noise = np.cumsum(rng.standard_normal(len(y))) if rng.random() < 0.5 else rng.standard_normal(len(y))
    noise = noise - np.convolve(noise, np.ones(400) / 400, mode="same")  # remove DC drift
    p_sig = np.mean(np.square(x.astype(np.float64) * np.abs(y).max() / max(np.abs(x).max(), 1)))
    noise *= np.sqrt(p_sig / 10 ** (snr / 10) / max(np.mean(noise**2), 1e-9))
    return np.clip(y + noise, -32768, 32767).astype(np.int16), lead


def room(y: np.ndarray, rng: np.random.Generator, seconds: tuple[float, float],
         direct: tuple[float, float]) -> np.ndarray:
    """`y` in a room, FFT-convolved (training and the held-out benchmarks): a decaying noise
    impulse response `seconds` long, its direct path 1 / uniform(`direct`); peak level kept."""
    n = int(rng.uniform(*seconds) * RATE)
    ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
    ir[0] = 1.0 / rng.uniform(*direct)
    size = 1 << int(np.ceil(np.log2(len(y) + n)))
    wet = np.fft.irfft(np.fft.rfft(y, size) * np.fft.rfft(ir, size), size)[:len(y) + n // 2]
    return wet * (np.abs(y).max() / max(np.abs(wet).max(), 1e-9))


def background(n: int, rng: np.random.Generator, noises: list, level: float,
               snrs: tuple) -> np.ndarray:
    """`n` samples of real background noise (clips drawn from `noises` and joined), at an SNR
    drawn from `snrs` (dB) against `level` (mean power)."""
    pieces, total = [], 0
    while total < n:
        piece = noises[int(rng.integers(len(noises)))]
        pieces.append(piece)
        total += len(piece)
    noise = np.concatenate(pieces)[:n]
    noise = noise - noise.mean()
    snr = float(rng.choice(snrs))
    return noise * np.sqrt(level / 10 ** (snr / 10) / max(np.mean(noise ** 2), 1e-9))


def plan(per_word: int, seed: int = 7) -> list[tuple[str, str, str, str, str, bool]]:
    """(split, kind, word, action, text, ends_with_word) for every clip, reproducibly."""
    rng = np.random.default_rng(seed)
    jobs = []
    for split in VOICES:
        for k in default_keywords():
            for i in range(per_word):
                text = k.phrase if i % 2 == 0 else rng.choice(CARRIERS).format(w=k.phrase)
                jobs.append((split, "positive", k.phrase, k.action, text, text.endswith(k.phrase)))
        for w in CONFUSABLES:
            for _ in range(max(per_word // 4, 2)):
                jobs.append((split, "confusable", w, "", w, True))
        for text in COUNTING:
            for _ in range(max(per_word // 3, 2)):
                jobs.append((split, "counting", "counting", "", text, False))
    return jobs


def make(job: tuple, n: int, out: Path, seed: int) -> Clip:
    """Render one planned clip with a voice drawn from its split."""
    split, kind, word, action, text, ends = job
    rng = np.random.default_rng([seed, n])
    voice = str(rng.choice(VOICES[split]))
    speech = trim(synth(text, voice, int(rng.integers(120, 201)), int(rng.integers(30, 71))))
    audio, lead = degrade(speech, rng)
    path = out / split / kind / word.replace(" ", "_") / f"{n:05d}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_wav(path, audio)
    end = (lead + len(speech)) / RATE if ends else None
    return Clip(str(path.relative_to(out)), split, kind, word, action, text, end, voice)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-word", type=int, default=40, help="clips per keyword per split")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "speech")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    jobs = plan(args.per_word, args.seed)
    with ThreadPoolExecutor(max_workers=2) as pool:
        clips = list(pool.map(lambda nj: make(nj[1], nj[0], args.out, args.seed), enumerate(jobs)))
    (args.out / "manifest.json").write_text(json.dumps([asdict(c) for c in clips], indent=0))
    print(f"{len(clips)} clips in {args.out}")


if __name__ == "__main__":
    main()
