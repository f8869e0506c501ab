"""Whole sessions through the real command line on file-backed audio: real speech in, real
speech out, measured in the output recording rather than taken from the scheduler's word."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import List

import numpy as np
import pytest

from conftest import DATA, voicecoach
from voicecoach.audio import RATE, onsets, read_wav, rms_dbfs

THREE_ROUNDS = DATA / "routines" / "three-rounds.yaml"
SLOT_TOLERANCE = 0.020


def timeline(path: Path) -> List[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def runs_of_counts(times: List[float], spacing: float = 1.0, slack: float = 0.1) -> List[List[float]]:
    """Groups of onsets about one second apart: the counted holds, found from the audio alone."""
    runs: List[List[float]] = [[times[0]]]
    for t in times[1:]:
        if abs(t - runs[-1][-1] - spacing) < slack:
            runs[-1].append(t)
        else:
            runs.append([t])
    return [r for r in runs if len(r) >= 5]


@pytest.fixture(scope="module")
def three_rounds(tmp_path_factory):
    """One 3-round session rendered to a WAV (shared by the timing tests: it is deterministic)."""
    import os
    out = tmp_path_factory.mktemp("three")
    env = dict(os.environ, XDG_DATA_HOME=str(out / "data"), XDG_RUNTIME_DIR=str(out))
    r = voicecoach("run", str(THREE_ROUNDS), "--no-listen", "--speaker-file", str(out / "out.wav"),
                   "--timeline", str(out / "timeline.jsonl"), "--db", str(out / "h.db"), env=env)
    assert r.returncode == 0, r.stderr
    return out


def test_every_count_lands_on_its_second(three_rounds):
    samples = read_wav(three_rounds / "out.wav")
    runs = runs_of_counts(onsets(samples))
    assert len(runs) == 6                                    # 3 rounds x 2 sides, heard in the audio
    for run in runs:
        assert len(run) >= 10                                # ten counts (the release may follow on 11)
        spacing = np.diff(run[:10])
        assert np.all(np.abs(spacing - 1.0) <= SLOT_TOLERANCE), spacing
    # and against the session's own start: count k of every hold at hold start + (k - 1) s
    said = [e for e in timeline(three_rounds / "timeline.jsonl") if e["type"] == "say"]
    ones = [e["at"] for e in said if e["text"] == "one"]
    heard = onsets(samples)
    for one in ones:
        for k in range(10):
            nearest = min(heard, key=lambda t: abs(t - (one + k)))
            assert abs(nearest - (one + k)) <= SLOT_TOLERANCE


def test_no_drift_over_the_session(three_rounds):
    """The last hold's counts are as exact as the first's: nothing accumulates."""
    runs = runs_of_counts(onsets(read_wav(three_rounds / "out.wav")))
    first, last = np.diff(runs[0][:10]), np.diff(runs[-1][:10])
    assert abs(first.mean() - 1.0) < 0.005 and abs(last.mean() - 1.0) < 0.005


def test_speech_is_in_the_recording_at_every_cue(three_rounds):
    samples = read_wav(three_rounds / "out.wav")
    events = timeline(three_rounds / "timeline.jsonl")
    said = [e for e in events if e["type"] == "say"]
    assert said and said[-1]["text"] == "Done."
    for e in said:
        start = int(e["at"] * RATE)
        assert rms_dbfs(samples[start:start + RATE // 5]) > -35, e   # voice within 200 ms of its time
    quiet = [e for e in events if e["type"] == "say" and e["text"] == "ten"]
    for e in quiet:                                   # between counts: silence, nothing else plays
        end = int((e["at"] - 0.05) * RATE)
        assert rms_dbfs(samples[end - RATE // 20:end]) < -60


def test_each_round_is_in_the_history(three_rounds):
    db = sqlite3.connect(three_rounds / "h.db")
    db.row_factory = sqlite3.Row
    tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
    assert tables
    assert (three_rounds / "h.db").stat().st_mode & 0o777 == 0o600


def test_text_mode_prints_cues_and_takes_typed_words(user_env):
    r = voicecoach("run", str(THREE_ROUNDS), "--text", input="pain\n", env=user_env, timeout=60)
    assert r.returncode == 3, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[1] == "[start]"
    assert "Stop now" in r.stdout or "stop" in r.stdout.lower()
    assert "safety" in r.stdout


def test_a_microphone_file_that_is_not_a_wav_is_bad_usage(user_env, tmp_path):
    """One line naming the file, exit 2, no traceback, and no history written."""
    notes = tmp_path / "notes.wav"
    notes.write_text("not a recording\n")
    r = voicecoach("run", str(THREE_ROUNDS), "--mic-file", str(notes), "--speaker-file", str(tmp_path / "out.wav"),
                   "--db", str(tmp_path / "h.db"), env=user_env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(notes) in lines[0] and "not a PCM WAV" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_a_speaker_file_that_cannot_be_written_is_one_line(user_env, tmp_path):
    r = voicecoach("run", str(THREE_ROUNDS), "--mic-file", str(DATA / "speech" / "stop-person.wav"),
                   "--speaker-file", str(tmp_path / "no-such-dir" / "out.wav"), "--db", str(tmp_path / "h.db"),
                   env=user_env, timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-dir" in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_a_routine_that_is_a_whole_other_file_is_quoted_short(user_env, tmp_path):
    other = tmp_path / "passwd.yaml"
    other.write_text("root:x:0:0:root:/root:/bin/bash daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin " * 50)
    r = voicecoach("check", str(other), env=user_env)
    assert r.returncode == 2 and len(r.stderr) < 200, r.stderr
