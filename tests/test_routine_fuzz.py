"""Property tests: valid routines load as written; damaged files fail only with RoutineError."""

from __future__ import annotations

import itertools
from importlib import resources
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicecoach.routine import Routine, RoutineError, load_routine, parse_routine

FUZZ = settings(max_examples=200, deadline=2000,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
BUILTIN = resources.files("voicecoach").joinpath("data/hamstring.yaml").read_bytes()

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
               min_size=1, max_size=40).filter(str.strip)
word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8)


@st.composite
def routines(draw: st.DrawFn) -> dict:
    """A valid routine document, with each optional key present or not."""
    words = iter(draw(st.lists(word, min_size=7, max_size=7, unique=True)))
    listen = {"safety": [next(words), next(words)], "stop": [next(words)],
              "pause": [next(words)], "resume": [next(words)], "repeat": [next(words)]}
    doc = {"name": draw(text), "setup": draw(st.lists(text, min_size=1, max_size=4))}
    optional = {
        "sides": st.lists(text, min_size=1, max_size=3, unique_by=str.strip),
        "hold_seconds": st.integers(1, 600),
        "rounds": st.integers(1, 20),
        "rest_between_sides": st.floats(0, 600) | st.integers(0, 600),
        "rest_between_rounds": st.floats(0, 600),
        "daily_target": st.integers(1, 50),
        "voice": st.fixed_dictionaries({"rate": st.integers(80, 400) | st.none(),
                                        "volume": st.floats(0, 1)}),
        "cues": st.fixed_dictionaries({"position": text.filter(lambda t: not set(t) & set("{}"))
                                       .map(lambda t: t + " {side}"),
                                       "rest": text | st.none()}),
        "listen": st.just(listen),
        "safety": st.fixed_dictionaries({"warning": text}, optional={"contact": text}),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


@FUZZ
@given(routines())
def test_valid_routines_load_as_written(doc: dict) -> None:
    r = parse_routine(yaml.safe_dump(doc, allow_unicode=True))
    assert r.name == doc["name"].strip()
    assert list(r.setup) == [cue.strip() for cue in doc["setup"]]
    if "hold_seconds" in doc:
        assert r.hold_seconds == doc["hold_seconds"]
    if "rest_between_sides" in doc:
        assert r.rest_between_sides == doc["rest_between_sides"]
    if "sides" in doc:
        assert list(r.sides) == [side.strip() for side in doc["sides"]]
    if "listen" in doc:
        assert list(r.listen.safety) == doc["listen"]["safety"]


edits = st.lists(st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]),
                           st.integers(0, len(BUILTIN) - 1), st.binary(min_size=1, max_size=8)),
                 min_size=1, max_size=6)
_counter = itertools.count()


def damage(data: bytes, changes: list) -> bytes:
    for kind, position, payload in changes:
        position %= max(len(data), 1)
        if not data and kind != "insert":
            continue
        if kind == "flip":
            data = data[:position] + bytes([data[position] ^ payload[0]]) + data[position + 1:]
        elif kind == "insert":
            data = data[:position] + payload + data[position:]
        elif kind == "delete":
            data = data[:position] + data[position + len(payload):]
        else:
            data = data[:position]
    return data


@FUZZ
@given(changes=edits)
def test_damaged_files_fail_only_with_routine_error(tmp_path: Path, changes: list) -> None:
    path = tmp_path / f"damaged-{next(_counter)}.yaml"
    path.write_bytes(damage(BUILTIN, changes))
    try:
        assert isinstance(load_routine(path), Routine)
    except RoutineError as e:
        assert str(e).startswith(str(path)) and e.message


yaml_ish = st.text(st.sampled_from(list("ab:-[]{},&*!?|>'\"#%@` \n\t.01~\u00e9")),
                   max_size=120)


@FUZZ
@given(yaml_ish)
def test_arbitrary_yaml_ish_text_fails_only_with_routine_error(source: str) -> None:
    try:
        parse_routine("name: x\nsetup: [a]\n" + source)
    except RoutineError as e:
        assert e.message
