"""Run a spotter configuration over many WAV clips on both cores (shared by bench and tuning)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from voicecoach.listening import (  # noqa: E402
    Detection, PocketsphinxSpotter, Tuning, default_keywords, spot_file,
)

SPEECH = ROOT / "bench" / "out" / "speech"
PEOPLE = Path("/work/shared/speech")

_spotter: PocketsphinxSpotter | None = None


def _init(tuning: Tuning, verify: bool) -> None:
    global _spotter
    _spotter = PocketsphinxSpotter(default_keywords(), tuning, verify=verify)


def _one(path: str) -> list[Detection]:
    assert _spotter is not None
    _spotter.reset()
    return list(spot_file(path, _spotter))


def run(paths: list[str], tuning: Tuning, verify: bool = True, workers: int = 2) -> list[list[Detection]]:
    """Detections for each clip, each clip heard from a fresh stream."""
    with get_context("spawn").Pool(workers, initializer=_init, initargs=(tuning, verify)) as pool:
        return pool.map(_one, paths, chunksize=8)


def manifest(split: str) -> list[dict]:
    """Generated clips of one split (run bench/make_speech.py first)."""
    clips = json.loads((SPEECH / "manifest.json").read_text())
    return [dict(c, path=str(SPEECH / c["path"])) for c in clips if c["split"] == split]


def tuning_dict(t: Tuning) -> dict:
    """kws.json shape of a Tuning."""
    return {"default_exponent": t.default_exponent, "exponents": t.exponents,
            "verifier": asdict(t.verifier)}
