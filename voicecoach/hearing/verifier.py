"""Second stage of the hearing: verify a keyword candidate against competing words.

Stock keyword spotting scores a phrase against a phone loop, so "paint", "number" or a
person counting "seven, ten" score almost as well as "pain" or "numb". Re-decoding the
buffered candidate with a grammar in which the keyword has to beat real competing words
(digits, confusables, common words) removes most of those false alarms; it only runs on
candidates, so its CPU cost is paid a few times per minute, not every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple

import numpy as np
from pocketsphinx import Decoder

COUNTING = (
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred"
)
CONFUSABLES = "paint plain thumb drum number numbers"
"""Confusable words a person may well say; a keyword's rare near-homophones ("shop" for "stop")
are left out on purpose: as competitors they took 40 % of real people's "stop" (measured)."""
COMMON = (
    "a an the i my me it is that this and or but so to of in on at for with "
    "oh ow ah okay yes no yeah not now then there here go ready breathe hold relax "
    "left right arm leg back neck knee foot feel feels little bit good fine again more "
    "slow slower up down in out stretch time next done"
)


@dataclass(frozen=True)
class VerifierSettings:
    """Tuned knobs of the verification stage (see kws.json)."""

    keyword_weight: float = 1.0   # JSGF weight of keyword alternatives vs a competitor's 1.0
    hold: float = 0.25            # seconds to wait after a KWS hit, so the word is in the buffer
    windows: Tuple[Tuple[float, float], ...] = ((-0.15, 0.25), (-0.45, 0.1), (-0.7, 0.2))
    """Segments re-decoded, relative to the hit's (start, end) for the first and to its end for
    the others: KWS word boundaries are unreliable, and any window that confirms suffices."""


def in_dictionary(decoder: Decoder, word: str) -> bool:
    """True when the engine can pronounce `word`."""
    return decoder.lookup_word(word) is not None


def competitors(decoder: Decoder, phrases: Sequence[str]) -> list[str]:
    """Competing words the engine knows, minus homophones of any keyword (pane vs pain)."""
    keyword_prons = {decoder.lookup_word(w) for p in phrases for w in p.split()}
    keyword_words = {w for p in phrases for w in p.split()}
    out: list[str] = []
    for word in dict.fromkeys(f"{COUNTING} {CONFUSABLES} {COMMON}".split()):
        pron = decoder.lookup_word(word)
        if pron is None or word in keyword_words or pron in keyword_prons:
            continue
        out.append(word)
    return out


def grammar(phrases: Sequence[str], others: Iterable[str], weight: float) -> str:
    """One slot where each keyword phrase competes with every other word (loops or optional
    words made pocketsphinx FSG search take up to ~40 s per second of audio)."""
    keys = " | ".join(f"/{weight:g}/ ( {p} )" for p in phrases)
    rest = " | ".join(f"/1/ {w}" for w in others)
    return (
        "#JSGF V1.0;\ngrammar verify;\n"
        f"public <utt> = <word>;\n<word> = {keys} | {rest};\n"
    )


class Verifier:
    """Re-decodes a short buffered segment and says whether the keyword survived."""

    def __init__(self, phrases: Sequence[str], settings: VerifierSettings, model: dict) -> None:
        self.settings = settings
        self.phrases = list(phrases)
        self.decoder = Decoder(**model)
        rules = grammar(phrases, competitors(self.decoder, phrases), settings.keyword_weight)
        self.decoder.add_jsgf_string("verify", rules)
        self.decoder.activate_search("verify")

    def word(self, segment: np.ndarray) -> Optional[str]:
        """The grammar's best single word (or keyword phrase) for `segment` (int16, 16 kHz)."""
        self.decoder.start_utt()
        self.decoder.process_raw(segment.tobytes(), False, True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        text = " ".join(w.split("(")[0] for w in hyp.hypstr.split()) if hyp is not None else ""
        return text or None
