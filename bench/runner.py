"""Run a spotter configuration over many WAV clips on both cores (shared by bench and tuning)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from voicecoach.hearing.engines import make_spotter  # noqa: E402
from voicecoach.hearing.sphinx import PocketsphinxSpotter, Tuning  # noqa: E402
from voicecoach.hearing.words import Detection, default_keywords, spot_file  # noqa: E402

SPEECH = ROOT / "bench" / "out" / "speech"
PEOPLE = Path("/work/shared/speech")

_spotter = None


def _init(tuning: Tuning, verify: bool, engine: str) -> None:
    global _spotter
    if engine == "pocketsphinx":
        _spotter = PocketsphinxSpotter(default_keywords(), tuning, verify=verify)
    else:
        _spotter = make_spotter(default_keywords(), engine)


def _one(path: str) -> list[Detection]:
    assert _spotter is not None
    _spotter.reset()
    return list(spot_file(path, _spotter))


def run(paths: list[str], tuning: Tuning, verify: bool = True, workers: int = 2,
        engine: str = "pocketsphinx") -> list[list[Detection]]:
    """Detections for each clip, each clip heard from a fresh stream (`tuning` and `verify`
    apply to the pocketsphinx engine)."""
    with get_context("spawn").Pool(workers, initializer=_init, initargs=(tuning, verify, engine)) as pool:
        return pool.map(_one, paths, chunksize=8)


def people_split(path: Path) -> str:
    """`train` or `test` for a person's clip: Speech Commands by speaker (half each), spoken
    digits by speaker (george trains, jackson measures). Keyword positives ("stop") only measure."""
    path = Path(path)
    if path.parent.name == "digits":
        return "train" if "_george_" in path.name else "test"
    if path.parent.name == "stop":
        return "test"
    return "train" if int(path.name.split("_")[0], 16) % 2 == 0 else "test"


def people(kind: str, split: str) -> list[Path]:
    """People's clips of a kind (`stop`, `words` or `digits`) in one split."""
    if kind == "digits":
        paths = sorted((PEOPLE / "digits").glob("*.wav"))
    else:
        paths = [p for p in sorted((PEOPLE / "commands").glob("*/*.wav")) if (p.parent.name == "stop") == (kind == "stop")]
    return [p for p in paths if people_split(p) == split]


def manifest(split: str) -> list[dict]:
    """Generated clips of one split (run bench/make_speech.py first)."""
    clips = json.loads((SPEECH / "manifest.json").read_text())
    return [dict(c, path=str(SPEECH / c["path"])) for c in clips if c["split"] == split]


def tuning_dict(t: Tuning) -> dict:
    """kws.json shape of a Tuning."""
    return {"default_exponent": t.default_exponent, "exponents": t.exponents,
            "verifier": asdict(t.verifier)}
