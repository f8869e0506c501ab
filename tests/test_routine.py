"""Routine loading: the built-in prescription, every error kind with its position, hostile files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from voicecoach.hearing.words import Keyword
from voicecoach.routine import (ENGINE_LINES, Routine, RoutineError, announcement,
                                builtin_routine, load_routine, parse_routine, phrases,
                                position_cue, vocabulary)

DOCS_EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "routine-example.yaml"
MINIMAL = "name: Morning\nsetup: [Stand tall.]\n"


def error(text: str, source: str = "morning.yaml") -> RoutineError:
    with pytest.raises(RoutineError) as info:
        parse_routine(text, source)
    return info.value


def test_builtin_routine_is_the_prescription() -> None:
    r = builtin_routine()
    assert r.source == "built-in"
    assert (r.hold_seconds, r.sides, r.daily_target) == (10, ("left", "right"), 3)
    warning = r.safety.warning.lower()
    for words in ("pins and needles", "numbness", "professional help"):
        assert words in warning
    setup = " ".join(r.setup).lower()
    assert "natural inward curve" in setup and "hinge at the hips" in setup
    assert "round your back" in setup  # the toe touch that rounds the spine is ruled out
    assert {"pain", "numb", "pins and needles"} <= set(r.listen.safety)
    assert "{side}" not in position_cue(r, "left") and "left heel" in position_cue(r, "left")
    hash(r)  # frozen all the way down


def test_defaults_make_a_short_file_valid() -> None:
    r = parse_routine(MINIMAL)
    assert (r.sides, r.hold_seconds, r.rounds, r.daily_target) == (("left", "right"), 10, 1, 3)
    assert (r.rest_between_sides, r.rest_between_rounds) == (3.0, 10.0)
    assert r.cues.rest is None and r.safety.contact is None and r.source == "<string>"
    assert r.safety.warning == builtin_routine().safety.warning
    assert r.voice.rate == 160 and r.voice.volume == 1.0 and r.voice.voice is None


def test_docs_example_sets_every_key() -> None:
    r = load_routine(DOCS_EXAMPLE)
    default = parse_routine(MINIMAL)
    for field in ("sides", "hold_seconds", "rounds", "rest_between_sides",
                  "rest_between_rounds", "daily_target", "voice"):
        assert getattr(r, field) != getattr(default, field), field
    assert r.cues.rest and r.safety.contact and r.listen.sensitivity
    assert r.voice.voice is not None


def test_announcement_phrases_and_vocabulary() -> None:
    r = parse_routine(MINIMAL + "listen: {safety: [numb, pain, tingling], repeat: [],"
                                " sensitivity: {pain: 0.6}}\n")
    assert announcement(r) == ("Say numb or pain at any time and I will stop at once. "
                               "Say stop to end, pause to pause.")
    said = phrases(r)
    assert said[0] == announcement(r) and len(said) == len(set(said))
    assert "Now your left side." in said and "Now your right side." in said
    assert set(ENGINE_LINES.values()) <= set(said) and r.safety.warning in said
    assert Keyword("pain", "safety", 0.6) in vocabulary(r) and Keyword("stop", "stop") in vocabulary(r)
    assert [k.action for k in vocabulary(r)][:3] == ["safety"] * 3


@pytest.mark.parametrize("text, where, message", [
    ("name: x\nsetup: [a]\nhold_seconds: 0\n", "3:15",
     "hold_seconds must be a whole number of seconds from 1 to 600, got 0"),
    ("name: x\nsetup: [a]\nhold_seconds: 10.5\n", "3:15", "whole number of seconds"),
    ("name: x\nsetup: [a]\nhold_seconds: 10.0\n", "3:15", "got 10.0"),
    ("name: x\nsetup: [a]\nrounds: true\n", "3:9", "rounds must be a whole number"),
    ("name: x\nsetup: [a]\nrest_between_sides: yes\n", "3:21", "number of seconds"),
    ("name: x\nsetup: [a]\nrest_between_rounds: .inf\n", "3:22", "from 0 to 600"),
    ("name: x\nsetup: [a]\ndaily_target: 51\n", "3:15", "from 1 to 50"),
    ("name: x\nsetup: [a]\nvoice: {rate: 79}\n", "3:15", "voice.rate"),
    ("name: x\nsetup: [a]\nvoice: {volume: 1.5}\n", "3:17", "voice.volume"),
    ("name: ''\nsetup: [a]\n", "1:7", "name must not be empty"),
    ("name: x\nsetup: []\n", "2:8", "at least one cue"),
    ("name: x\nsetup: [a, '  ']\n", "2:12", "setup cue 2 must not be empty"),
    ("name: x\nsetup: Stand tall.\n", "2:8", "setup must be a list"),
    ("name: x\n", "1:1", "setup is missing"),
    ("setup: [a]\n", "1:1", "name is missing"),
    ("name: x\nsetup: [a]\ncues:\n  hold: ''\n", "4:9", "cues.hold must not be empty"),
    ("name: x\nsetup: [a]\ncues:\n  hold: yes\n", "4:9", "put it in quotes"),
    ("name: x\nsetup: [a]\ncues: {position: 'Now your {leg}.'}\n", "3:18",
     "only use the placeholder {side}, got {leg}"),
    ("name: x\nsetup: [a]\ncues: {position: 'Now your leg.'}\n", "3:18", "{side}"),
    ("name: x\nsetup: [a]\ncues: {position: 'Now {side'}\n", "3:18", "stray {"),
    ("name: x\nsetup: [a]\nsides: [left, left]\n", "3:15", "'left' is listed twice"),
    ("name: x\nsetup: [a]\nsides: []\n", "3:8", "at least one side"),
    ("name: x\nsetup: [a]\nlisten:\n  pause: [wait]\n  resume: [Wait]\n", "5:12",
     "'wait' is listed both in listen.pause and listen.resume"),
    ("name: x\nsetup: [a]\nlisten: {safety: [pain, stop]}\n", "3:25",
     "'stop' is in listen.safety but is also a default listen.stop word"),
    ("name: x\nsetup: [a]\nlisten: {safety: []}\n", "3:18", "listen.safety needs"),
    ("name: x\nsetup: [a]\nlisten: {pause: []}\n", "3:17", "must both have words"),
    ("name: x\nsetup: [a]\nlisten: {stop: ['stop!']}\n", "3:17", "letters and spaces"),
    ("name: x\nsetup: [a]\nlisten: {sensitivity: {pain: 2}}\n", "3:30", "from 0 to 1"),
    ("name: x\nsetup: [a]\nlisten: {sensitivity: {pian: 0.5}}\n", "3:24",
     "did you mean 'pain'?"),
    ("name: x\nsetup: [a]\nhold_second: 10\n", "3:1",
     "unknown key 'hold_second' in the routine; did you mean 'hold_seconds'?"),
    ("name: x\nsetup: [a]\ncues: {relase: Go}\n", "3:8", "did you mean 'release'?"),
    ("name: x\nsetup: [a]\nzzz: 1\n", "3:1", "expected one of: name, voice"),
    ("name: x\nsetup: [a]\nrounds: 2\nrounds: 3\n", "4:1",
     "duplicate key 'rounds' in the routine (first given on line 3)"),
    ("name: x\nsetup: [a]\ncues: {hold: a, hold: b}\n", "3:17", "duplicate key 'hold'"),
    ("name: x\nsetup: [a]\non: 1\n", "3:1", "'on' in the routine is read by YAML as a yes/no"),
    ("- name: x\n", "1:1", "the routine must be a mapping"),
    ("just words\n", "1:1", "must be a mapping"),
    ("", "1:1", "the routine is empty"),
    ("name: x\nsetup: [a\n", "3:1", "YAML syntax error"),
    ("name: x\nsetup: [a]\n---\nname: y\n", "3:1", "single document"),
    ("name: x\nsetup: [a]\n<<: {rounds: 2}\n", "3:1", "merge keys"),
    ("name: x\x07\nsetup: [a]\n", "1:8", "character #x0007"),
    ("name: x\nsetup: [a]\nhold_seconds: " + "9" * 5000 + "\n", "3:15", "cannot be read"),
    ("name: x\nsetup: [a]\nsides: [2024-01-01]\n", "3:9", "reads as a date"),
])
def test_errors_point_at_the_value(text: str, where: str, message: str) -> None:
    e = error(text)
    line, column = map(int, where.split(":"))
    assert (e.path, e.line, e.column) == ("morning.yaml", line, column), str(e)
    assert message in e.message
    assert str(e) == f"morning.yaml:{where}: {e.message}"


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo hi']",
                                 "!!python/name:os.system", "!!python/object:builtins.dict {}",
                                 "!local x", "!!set {a, b}"])
def test_object_tags_are_rejected(tag: str) -> None:
    e = error(f"name: x\nsetup: [a]\nsides: {tag}\n")
    assert (e.line, e.column) == (3, 8) and ("not allowed" in e.message or "a list" in e.message)


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    start = time.perf_counter()
    e = error("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1.0
    assert "too many aliases" in e.message and e.line == 3


def test_deep_nesting_is_refused() -> None:
    e = error("[" * 50_000 + "]" * 50_000)
    assert "nested too deeply" in e.message and e.line == 1


def test_a_few_aliases_are_fine() -> None:
    r = parse_routine("name: &n Morning\nsetup: [*n]\nsides: &s [left]\n")
    assert r.setup == ("Morning",) and r.sides == ("left",)


def test_big_file_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(50 * 2**20)  # sparse: costs nothing to create, a lot to parse
    start = time.perf_counter()
    with pytest.raises(RoutineError, match="routine files are at most 1 MiB") as info:
        load_routine(big)
    assert time.perf_counter() - start < 0.5
    assert info.value.path == str(big) and info.value.line is None
    assert str(info.value).startswith(f"{big}: ")


def test_directory_missing_and_fifo(tmp_path: Path) -> None:
    with pytest.raises(RoutineError, match="is a directory"):
        load_routine(tmp_path)
    with pytest.raises(RoutineError, match="no such file"):
        load_routine(tmp_path / "nope.yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(RoutineError, match="not a regular file"):
        load_routine(fifo)


def test_non_utf8_points_at_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nsetup: [Étirez]\n".encode("latin-1"))
    with pytest.raises(RoutineError) as info:
        load_routine(path)
    assert (info.value.line, info.value.column) == (2, 9)
    assert "not UTF-8" in info.value.message and "0xc9" in info.value.message


def test_load_routine_from_file(tmp_path: Path) -> None:
    path = tmp_path / "morning.yaml"
    path.write_text("\ufeff" + MINIMAL + "hold_seconds: 20\n", encoding="utf-8")
    r = load_routine(path)
    assert isinstance(r, Routine) and r.hold_seconds == 20 and r.source == str(path)
    path.write_text(MINIMAL + "hold_seconds: 0\n", encoding="utf-8")
    with pytest.raises(RoutineError, match=r"morning\.yaml:3:15: hold_seconds"):
        load_routine(path)
