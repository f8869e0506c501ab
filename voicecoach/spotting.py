"""Second stage of the hearing: verify a keyword candidate against competing words.

Stock keyword spotting scores a phrase against a phone loop, so "paint", "number" or a
person counting "seven, ten" score almost as well as "pain" or "numb". Re-decoding the
buffered candidate with a grammar in which the keyword has to beat real competing words
(digits, confusables, common words) removes most of those false alarms; it only runs on
candidates, so its CPU cost is paid a few times per minute, not every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from pocketsphinx import Decoder

COUNTING = (
    "zero oh one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred"
)
CONFUSABLES = (
    "paint plain pay page main name rain same gain came cane chain brain train pen pin "
    "thumb drum dumb gum come some sum none mum number numbers summer hum "
    "hurt heard her third shirt hers hearts hurry worse first "
    "tickling tinkling single ringing thing thinking king tinting "
    "needle noodles pens beans people "
    "stuff top shop step stomp stopped spot "
    "pose paws pass was because cause "
    "weight white what way "
    "assume consume result resumes "
    "continued convenient contain "
    "repeats repeated complete compete rebate retreat"
)
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
    pad_before: float = 0.15      # seconds of audio kept before the candidate's start
    hold: float = 0.15            # seconds to wait after a KWS hit: loose thresholds fire mid-word


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
    """Up to three words, each keyword phrase competing with every other word (an unbounded
    `+` loop made pocketsphinx FSG search take ~40 s per second of audio)."""
    keys = " | ".join(f"/{weight:g}/ ( {p} )" for p in phrases)
    rest = " | ".join(f"/1/ {w}" for w in others)
    return (
        "#JSGF V1.0;\ngrammar verify;\n"
        f"public <utt> = [<word>] <word> [<word>];\n<word> = {keys} | {rest};\n"
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

    def words(self, segment: np.ndarray) -> list[tuple[str, int, int]]:
        """The grammar's best words for `segment` (int16, 16 kHz) as (word, first, last frame)."""
        self.decoder.start_utt()
        self.decoder.process_raw(segment.tobytes(), False, True)
        self.decoder.end_utt()
        if self.decoder.hyp() is None:
            return []
        return [(s.word, s.start_frame, s.end_frame) for s in self.decoder.seg()
                if not s.word.startswith(("<", "[", "+"))]

    def keywords(self, segment: np.ndarray) -> list[tuple[str, int, int]]:
        """Keyword phrases that survive re-decoding, with their first and last frame."""
        words = [(w.split("(")[0], a, b) for w, a, b in self.words(segment)]
        found = []
        for phrase in self.phrases:
            n = len(phrase.split())
            for i in range(len(words) - n + 1):
                if " ".join(w for w, _, _ in words[i:i + n]) == phrase:
                    found.append((phrase, words[i][1], words[i + n - 1][2]))
        return found
