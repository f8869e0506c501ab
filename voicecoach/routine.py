"""Stretching routines: loading and validating YAML routine files, and the built-in routine.

A routine is a prescription (how long, how often, which words stop it), so a file that is wrong
must fail loudly with the line and column to fix, never run with a silently different dose.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

from yaml.nodes import MappingNode, Node

from voicecoach.hearing.words import ACTIONS, DEFAULT_WORDS, Keyword
from voicecoach.yamlcheck import Invalid, Nodes, at, compose, describe, read_text

DEFAULT_WARNING = (
    "Stop now. Stand up slowly and put your foot down. "
    "Sharp pain, pins and needles or numbness in a leg mean you must not go on. "
    "Please get professional help before you stretch again."
)
DEFAULT_CUES = {"position": "Now your {side} side.", "hold": "Hold.", "release": "And release.",
                "rest": None, "complete": "Well done. That is the stretch done."}
ENGINE_LINES: Dict[str, str] = {
    "paused": "Paused. Say resume to go on.",
    "resuming": "Resuming.",
    "mic_lost": "I can no longer hear you, so I have stopped. Please check the microphone.",
    "deaf": "Voice stop is off: I am not listening. Press your stop shortcut to stop.",
    "unsaved": "I could not save your history. I will keep trying.",
}
"""Fixed lines the session engine speaks, listed so speech can be prepared ahead."""

MAX_HOLD_SECONDS = 600
"""The longest hold a routine may prescribe; every count up to it can be spoken."""
MAX_REST_SECONDS = 600
"""The longest rest a routine may prescribe."""

_TOP = ("name", "voice", "setup", "sides", "hold_seconds", "rounds", "rest_between_sides",
        "rest_between_rounds", "daily_target", "cues", "listen", "safety")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


class RoutineError(Exception):
    """A routine that cannot be used; str() is "PATH:LINE:COL: message" like a compiler's."""

    def __init__(self, message: str, path: str = "<string>", line: Optional[int] = None,
                 column: Optional[int] = None):
        self.message, self.path, self.line, self.column = message, path, line, column
        where = f"{path}:{line}:{column}" if line is not None and column is not None else path
        super().__init__(f"{where}: {message}")


class FrozenMap(Mapping[str, float]):
    """A read-only, hashable mapping, so a Routine stays a frozen, hashable value."""

    def __init__(self, pairs: Mapping[str, float]):
        self._items = dict(pairs)

    def __getitem__(self, key: str) -> float:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class Cues:
    """What the coach says around each hold; `position` has a {side} placeholder."""
    position: str
    hold: str
    release: str
    rest: Optional[str]
    complete: str


@dataclass(frozen=True)
class Listen:
    """The spoken vocabulary: lowercase words or phrases per action, optional sensitivities."""
    safety: Tuple[str, ...]
    stop: Tuple[str, ...]
    pause: Tuple[str, ...]
    resume: Tuple[str, ...]
    repeat: Tuple[str, ...]
    sensitivity: Mapping[str, float]


@dataclass(frozen=True)
class Safety:
    """Spoken when a safety word is heard: stop, and where to get help."""
    warning: str
    contact: Optional[str]


@dataclass(frozen=True)
class VoiceConfig:
    """Speech settings; None means the speech engine's own default."""
    voice: Optional[str]
    rate: Optional[int]
    volume: float


@dataclass(frozen=True)
class Routine:
    """A validated routine; `source` is the file it came from, "<string>" or "built-in"."""
    name: str
    setup: Tuple[str, ...]
    sides: Tuple[str, ...]
    hold_seconds: int
    rounds: int
    rest_between_sides: float
    rest_between_rounds: float
    daily_target: int
    cues: Cues
    listen: Listen
    safety: Safety
    voice: VoiceConfig
    source: str


def load_routine(path: Union[str, "os.PathLike[str]"]) -> Routine:
    """Load and validate a routine file; any problem raises RoutineError naming the file."""
    source = os.fspath(path)
    try:
        text = read_text(path)
    except Invalid as e:
        raise RoutineError(e.message, source, e.line, e.column) from None
    return parse_routine(text, source)


def parse_routine(text: str, source: str = "<string>") -> Routine:
    """Validate routine YAML text; `source` names it in error messages."""
    try:
        return _build(text, source)
    except Invalid as e:
        raise RoutineError(e.message, source, e.line, e.column) from None


@lru_cache(maxsize=1)
def builtin_routine() -> Routine:
    """The prescribed hamstring stretch shipped with the package."""
    text = resources.files("voicecoach").joinpath("data/hamstring.yaml").read_text("utf-8")
    return parse_routine(text, "built-in")


def position_cue(r: Routine, side: str) -> str:
    """The cue that puts the person in position for `side`."""
    return r.cues.position.replace("{side}", side)


def announcement(r: Routine) -> str:
    """The opening line: which words stop the session, so the person knows before starting."""
    safety = " or ".join(r.listen.safety[:2])
    controls = [f"{r.listen.stop[0]} to end"]
    if r.listen.pause:
        controls.append(f"{r.listen.pause[0]} to pause")
    if r.listen.repeat:
        controls.append(f"{r.listen.repeat[0]} to hear a cue again")
    return (f"Say {safety} at any time and I will stop at once. "
            f"Say {', '.join(controls)}.")


def phrases(r: Routine) -> List[str]:
    """Every distinct phrase a session with this routine can say, in speaking order."""
    lines = [announcement(r), *r.setup, *(position_cue(r, side) for side in r.sides),
             r.cues.hold, r.cues.release, r.cues.rest, r.cues.complete,
             r.safety.warning, r.safety.contact, *ENGINE_LINES.values()]
    return list(dict.fromkeys(line for line in lines if line))


def vocabulary(r: Routine) -> List[Keyword]:
    """Every word the listener must spot, with its action and sensitivity (None: the tuned one)."""
    return [Keyword(word, action, r.listen.sensitivity.get(word))
            for action in ACTIONS for word in getattr(r.listen, action)]


def _build(text: str, source: str) -> Routine:
    root = compose(text)
    if root is None:
        raise Invalid("the routine is empty; it needs at least a name and setup cues", 1, 1)
    n = Nodes()
    if not isinstance(root, MappingNode):
        raise at(root, "the routine must be a mapping of keys (name: ..., setup: ...), "
                       f"got {describe(root)}")
    top = n.mapping(root, "the routine", _TOP)
    for required, example in (("name", "name: Morning stretch"), ("setup", "setup: [Stand tall.]")):
        if required not in top:
            raise at(root, f"{required} is missing; every routine needs one, e.g. {example}")
    setup = n.text_list(top["setup"][1], "setup", "cue")
    if not setup:
        raise at(top["setup"][1], "setup must have at least one cue")
    sides_node = top.get("sides", (None, None))[1]
    sides = _sides(n, sides_node) if sides_node is not None else ("left", "right")

    def whole(key: str, default: int, low: int, high: int, unit: str = "") -> int:
        return n.whole(top[key][1], key, low, high, unit) if key in top else default

    def seconds(key: str, default: float) -> float:
        return n.number(top[key][1], key, 0, MAX_REST_SECONDS, " of seconds") if key in top else default

    return Routine(
        name=n.text(top["name"][1], "name"),  # type: ignore[arg-type]
        setup=tuple(cue for cue, _ in setup),
        sides=sides,
        hold_seconds=whole("hold_seconds", 10, 1, MAX_HOLD_SECONDS, " of seconds"),
        rounds=whole("rounds", 1, 1, 20, " of rounds"),
        rest_between_sides=seconds("rest_between_sides", 3.0),
        rest_between_rounds=seconds("rest_between_rounds", 10.0),
        daily_target=whole("daily_target", 3, 1, 50, " of rounds per day"),
        cues=_cues(n, top.get("cues")),
        listen=_listen(n, top.get("listen")),
        safety=_safety(n, top.get("safety")),
        voice=_voice(n, top.get("voice")),
        source=source,
    )


def _sides(n: Nodes, node: Node) -> Tuple[str, ...]:
    sides = n.text_list(node, "sides", "entry")
    if not sides:
        raise at(node, "sides must name at least one side, e.g. [left, right]")
    seen: Dict[str, Node] = {}
    for side, side_node in sides:
        if side in seen:
            raise at(side_node, f"side '{side}' is listed twice in sides")
        seen[side] = side_node
    return tuple(seen)


def _cues(n: Nodes, entry: Optional[Tuple[Node, Node]]) -> Cues:
    given = n.mapping(entry[1], "cues", tuple(DEFAULT_CUES)) if entry else {}
    values = {key: (n.text(given[key][1], f"cues.{key}", optional=key == "rest")
                    if key in given else default)
              for key, default in DEFAULT_CUES.items()}
    if "position" in given:
        _check_position(given["position"][1], values["position"])  # type: ignore[arg-type]
    return Cues(**values)  # type: ignore[arg-type]


def _check_position(node: Node, text: str) -> None:
    """The position cue is formatted per side: {side} must be its one and only placeholder."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text)
                  if name is not None]
    except ValueError as e:
        raise at(node, f"cues.position has a stray {{ or }} ({e}); "
                       "use {side} to say the side") from None
    for name, spec, conv in fields:
        if name != "side" or spec or conv:
            raise at(node, f"cues.position may only use the placeholder {{side}}, "
                           f"got {{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}")
    if not fields:
        raise at(node, "cues.position must say which side with {side}, "
                       "e.g. \"Now your {side} leg.\"")


def _listen(n: Nodes, entry: Optional[Tuple[Node, Node]]) -> Listen:
    given = n.mapping(entry[1], "listen", (*ACTIONS, "sensitivity")) if entry else {}
    owner: Dict[str, Tuple[str, Node]] = {}
    words: Dict[str, Tuple[str, ...]] = {}
    for action in (a for a in ACTIONS if a in given):
        listed = []
        for raw, node in n.text_list(given[action][1], f"listen.{action}", "word"):
            word = " ".join(raw.lower().split())
            if not all(_WORD.fullmatch(token) for token in word.split()):
                raise at(node, f"listen.{action} words must be letters and spaces, got {raw!r}")
            if word in owner:
                first = owner[word][0]
                where = "twice in" if first == action else f"both in listen.{first} and"
                raise at(node, f"the word '{word}' is listed {where} listen.{action}; "
                               "each word can do only one thing")
            owner[word] = (action, node)
            listed.append(word)
        words[action] = tuple(listed)
    for action in (a for a in ACTIONS if a not in given):
        for word in DEFAULT_WORDS[action]:
            if word in owner:
                raise at(owner[word][1], f"the word '{word}' is in listen.{owner[word][0]} but "
                                         f"is also a default listen.{action} word; list "
                                         f"listen.{action} yourself without it")
        words[action] = DEFAULT_WORDS[action]
    for action in ("safety", "stop"):
        if not words[action]:
            raise at(given[action][1], f"listen.{action} needs at least one word")
    if bool(words["pause"]) != bool(words["resume"]):
        empty = "pause" if not words["pause"] else "resume"
        raise at(given[empty][1], "listen.pause and listen.resume must both have words "
                                  "or both be empty: a paused session must be able to resume")
    sensitivity: Dict[str, float] = {}
    if "sensitivity" in given:
        vocabulary = tuple(w for action in ACTIONS for w in words[action])
        for word, (_, node) in n.mapping(given["sensitivity"][1], "listen.sensitivity",
                                         vocabulary).items():
            sensitivity[word] = n.number(node, f"listen.sensitivity of '{word}'", 0, 1)
    return Listen(sensitivity=FrozenMap(sensitivity), **words)


def _safety(n: Nodes, entry: Optional[Tuple[Node, Node]]) -> Safety:
    given = n.mapping(entry[1], "safety", ("warning", "contact")) if entry else {}
    warning = n.text(given["warning"][1], "safety.warning") if "warning" in given else None
    contact = n.text(given["contact"][1], "safety.contact", optional=True) \
        if "contact" in given else None
    return Safety(warning or DEFAULT_WARNING, contact)


def _voice(n: Nodes, entry: Optional[Tuple[Node, Node]]) -> VoiceConfig:
    given = n.mapping(entry[1], "voice", ("voice", "rate", "volume")) if entry else {}
    voice = n.text(given["voice"][1], "voice.voice", optional=True) if "voice" in given else None
    rate: Optional[int] = 160
    if "rate" in given:
        node = given["rate"][1]
        rate = None if node.tag.endswith(":null") else \
            n.whole(node, "voice.rate", 80, 400, " of words per minute")
    volume = n.number(given["volume"][1], "voice.volume", 0, 1) if "volume" in given else 1.0
    return VoiceConfig(voice, rate, volume)
