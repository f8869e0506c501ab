"""The listener's CPU per second of audio on this machine, from audio it makes itself.

Needs no data set (espeak-ng counts, with a room's noise), so it runs on a Pi as it is:
`.venv/bin/python bench/cpu.py`. The built-in routine's spotter (as `voicecoach run` hears:
the learned nets, with the speech-embedding head where onnxruntime runs) hears the audio as
fast as it can, in this process after a warm-up; CPU time (all threads) over audio time is the
share of one core a live session's listener takes. Under qemu the figure is the emulator's
cost, not a Pi's (see docs/pi.md).
Usage: .venv/bin/python bench/cpu.py [--seconds 60] [--repeats 3] [--engine auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from voicecoach import load_routine
from voicecoach.audio import RATE, read_wav, write_wav
from voicecoach.hearing.embedding import available
from voicecoach.hearing.engines import make_spotter
from voicecoach.hearing.words import spot_file
from voicecoach.routine import vocabulary

COUNTING = "one. two. three. four. five. six. seven. eight. nine. ten. hold it there. and breathe."


def counting(path: Path, seconds: float) -> Path:
    """`seconds` of someone counting in a quiet room (espeak-ng, a room's noise under it)."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "140", "-w", str(raw), COUNTING], check=True)
    voice = read_wav(raw).astype(np.float64)
    reps = int(np.ceil(seconds * RATE / len(voice)))
    audio = np.tile(voice, reps)[:int(seconds * RATE)]
    audio += np.random.default_rng(0).normal(0, 60, len(audio))
    write_wav(path, np.clip(audio, -32768, 32767).astype(np.int16))
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60.0, help="audio per run (default 60)")
    p.add_argument("--repeats", type=int, default=3, help="runs (default 3)")
    p.add_argument("--engine", default="auto", choices=["auto", "learned", "pocketsphinx"])
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        audio = counting(Path(tmp) / "counting.wav", args.seconds)
        warm = counting(Path(tmp) / "warm.wav", 2.0)
        spotter = make_spotter(vocabulary(load_routine(None)), args.engine)
        list(spot_file(str(warm), spotter))                    # models loaded, buffers made
        shares = []
        for _ in range(args.repeats):
            spotter.reset()
            c0, w0 = time.process_time(), time.monotonic()
            list(spot_file(str(audio), spotter))
            cpu, wall = time.process_time() - c0, time.monotonic() - w0
            shares.append(cpu / args.seconds)
            print(f"{args.seconds:.0f} s of audio: {cpu:.2f} s CPU ({100 * cpu / args.seconds:.1f} % of one core), "
                  f"{wall:.2f} s wall", file=sys.stderr)
    print(json.dumps({
        "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "engine": args.engine, "head": available(),
        "cpu_share_median": round(float(np.median(shares)), 4),
        "cpu_share_runs": [round(s, 4) for s in shares], "audio_seconds": args.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
