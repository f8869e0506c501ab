"""Crash safety through the real command line: kills at random instants lose no reported round
and never damage the database; SIGTERM/SIGINT stop cleanly; an unwritable history (read-only or
full) never stops the person's session, and what could not be saved is said, not hidden.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from conftest import DATA, REPO, voicecoach
from voicecoach.audio import FRAME, read_wav
from voicecoach.history import History

MANY = (DATA / "routines" / "many-rounds.yaml").read_text()
SHORT = MANY.replace("rounds: 20", "rounds: 3")
WARNING = "warning: the history could not be saved"


@pytest.fixture
def many(tmp_path: Path) -> Path:
    path = tmp_path / "many.yaml"
    path.write_text(MANY)
    return path


def rounds_reported(timeline: Path) -> List[int]:
    """Rounds the timeline says were done: each line is written after the round was committed.
    A line cut short by the kill is not a report."""
    done = []
    if timeline.exists():
        for line in timeline.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["type"] == "rounddone":
                done.append(event["round_no"])
    return done


def saved(db: Path) -> Dict[int, List[int]]:
    """Round numbers per session, read the way another program would (plain sqlite3)."""
    conn = sqlite3.connect(db)
    try:
        out: Dict[int, List[int]] = {sid: [] for (sid,) in conn.execute("SELECT id FROM sessions")}
        for sid, n in conn.execute("SELECT session_id, round FROM rounds ORDER BY session_id, round"):
            out[sid].append(n)
        return out
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def start(args: List[str], env: Dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "voicecoach", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def wait_for_line(path: Path, deadline: float) -> None:
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never got its first line")
        time.sleep(0.0005)


@pytest.mark.slow
def test_sigkill_at_random_instants_loses_no_reported_round(many: Path, tmp_path: Path,
                                                            user_env: Dict[str, str]) -> None:
    db = tmp_path / "h.db"
    run_args = ["run", str(many), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                "--db", str(db)]
    # a pilot session: how long the session itself lasts (first timeline line to exit)
    pilot = tmp_path / "pilot.jsonl"
    proc = start(run_args + ["--timeline", str(pilot)], user_env)
    wait_for_line(pilot, time.monotonic() + 60)
    t0 = time.monotonic()
    assert proc.wait(60) == 0, proc.stderr.read()
    span = time.monotonic() - t0
    assert rounds_reported(pilot) == list(range(1, 21))

    rng = random.Random(20240501)
    kills = 40
    mid = 0
    for i in range(kills):
        timeline = tmp_path / f"t{i}.jsonl"
        proc = start(run_args + ["--timeline", str(timeline)], user_env)
        wait_for_line(timeline, time.monotonic() + 60)
        time.sleep(rng.uniform(0, span * 1.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
        reported = rounds_reported(timeline)
        sessions = saved(db)
        on_disk = sessions[max(sessions)]                # this session: the newest row
        assert integrity(db) == "ok", f"kill {i}"
        assert on_disk == list(range(1, len(on_disk) + 1)), f"kill {i}: gaps {on_disk}"
        assert set(reported) <= set(on_disk), f"kill {i}: reported {reported}, saved {on_disk}"
        assert len(on_disk) <= len(reported) + 1          # at most one committed, not yet reported
        mid += 0 < len(reported) < 20
    assert mid >= kills // 3, f"only {mid} of {kills} kills landed between rounds 1 and 20"
    # the killed sessions read as interrupted, and the history still takes a full session
    outcomes = [s["outcome"] for s in History(db).sessions()]
    assert outcomes[0] == "completed" and outcomes[1:] != [] and "running" not in outcomes
    assert sum(o == "interrupted" for o in outcomes) + sum(o == "completed" for o in outcomes) == kills + 1
    done = voicecoach(*run_args, env=user_env)
    assert done.returncode == 0 and integrity(db) == "ok"
    assert saved(db)[max(saved(db))] == list(range(1, 21))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_stop_cleanly_and_are_logged(sig: signal.Signals, many: Path,
                                                        tmp_path: Path,
                                                        user_env: Dict[str, str]) -> None:
    """A real-time session (`--text`), signalled once it speaks: stopped, exit 4, logged."""
    db = tmp_path / "h.db"
    proc = start(["run", str(many), "--text", "--db", str(db)], user_env, stdin=subprocess.PIPE)
    first = proc.stdout.readline()                       # cue lines are flushed as they happen
    assert "[start]" in first, first
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert "Traceback" not in err and "stopped: 0 round(s) done" in err, err
    assert "session stopped" in out
    assert integrity(db) == "ok"
    sessions = History(db).sessions()
    assert [(s["outcome"], s["rounds"]) for s in sessions] == [("stopped", 0)]


def _no_dac_override(command: List[str]) -> List[str]:
    """As root, drop the capabilities that let root write where file modes forbid it."""
    if os.geteuid() != 0:
        return command
    if not shutil.which("setpriv"):
        pytest.fail("running as root without setpriv: read-only files cannot be enforced")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]


def unsaved_clip() -> np.ndarray:
    """The spoken history warning, rendered exactly as a session renders it (cache is warm)."""
    from voicecoach.launch import render
    from voicecoach.routine import ENGINE_LINES, parse_routine
    from voicecoach.settings import PersonSettings
    routine = parse_routine(SHORT)
    text = ENGINE_LINES["unsaved"]
    return render(routine, PersonSettings().voice_for(routine))[text].samples


def spoken_at_end(wav: Path, clip: np.ndarray) -> bool:
    """The warning is played last, from a frame boundary, sample for sample."""
    out = read_wav(wav)
    start = len(out) - -(-len(clip) // FRAME) * FRAME
    return start >= 0 and np.array_equal(out[start:start + len(clip)], clip)


def test_read_only_history_warns_once_and_the_session_goes_on(tmp_path: Path,
                                                              user_env: Dict[str, str]) -> None:
    routine = tmp_path / "short.yaml"
    routine.write_text(SHORT)
    locked = tmp_path / "locked"
    locked.mkdir()
    db = locked / "sub" / "h.db"
    os.chmod(locked, 0o500)
    try:
        command = _no_dac_override([sys.executable, "-m", "voicecoach", "run", str(routine),
                                    "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                                    "--timeline", str(tmp_path / "t.jsonl"), "--db", str(db)])
        done = subprocess.run(command, env=user_env, cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    finally:
        os.chmod(locked, 0o700)
    assert done.returncode == 0, done.stderr                 # the session completed
    assert rounds_reported(tmp_path / "t.jsonl") == [1, 2, 3]
    assert done.stderr.count(WARNING) == 1, done.stderr       # warned once on stderr
    assert "could not be saved" in done.stdout + done.stderr.split(WARNING)[1]  # and said so at the end
    assert spoken_at_end(tmp_path / "o.wav", unsaved_clip())  # and spoken
    assert not db.exists()


def test_history_that_becomes_writable_gets_every_round(tmp_path: Path,
                                                        user_env: Dict[str, str]) -> None:
    """Read-only at the start, writable once the session runs: what was kept in memory (the
    session start) is written with round 1, and the stop with it."""
    routine = tmp_path / "short.yaml"
    routine.write_text(SHORT)
    locked = tmp_path / "locked"
    locked.mkdir()
    db = locked / "h.db"
    os.chmod(locked, 0o500)
    try:
        command = _no_dac_override([sys.executable, "-m", "voicecoach", "run", str(routine),
                                    "--text", "--db", str(db)])
        proc = subprocess.Popen(command, env=user_env, cwd=REPO, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert "[start]" in proc.stdout.readline()      # started: its start could not be saved
        assert not db.exists()
    finally:
        os.chmod(locked, 0o700)
    for line in proc.stdout:
        if "# round 1 done" in line:
            break
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, err
    assert err.count(WARNING) == 1, err
    assert "could not be saved" not in err.split(WARNING)[1]  # all written in the end
    sessions = History(db).sessions()
    assert [(s["outcome"], s["rounds"]) for s in sessions] == [("stopped", 1)]
    assert integrity(db) == "ok"


def _full_disk() -> None:
    """In the child: every regular file is full (writes fail with EFBIG, not a fatal signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))


def test_full_disk_does_not_stop_the_session(tmp_path: Path, user_env: Dict[str, str]) -> None:
    routine = tmp_path / "short.yaml"
    routine.write_text(SHORT)
    db = tmp_path / "h.db"
    first = voicecoach("run", str(routine), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                       "--db", str(db), env=user_env)      # a history that already holds a session
    assert first.returncode == 0, first.stderr
    before = db.read_bytes()
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", str(routine), "--no-listen",
                             "--speaker-file", "/dev/null", "--timeline", f"/dev/fd/{w}",
                             "--db", str(db)], env=user_env, cwd=REPO, pass_fds=(w,),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_full_disk)
    os.close(w)
    with os.fdopen(r) as timeline:
        events = [json.loads(line) for line in timeline]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert [e["round_no"] for e in events if e["type"] == "rounddone"] == [1, 2, 3]
    assert err.count(WARNING) == 1 and "Traceback" not in err, err
    assert "could not be saved" in out + err.split(WARNING)[1]
    assert integrity(db) == "ok" and db.read_bytes() == before
    assert [s["rounds"] for s in History(db).sessions()] == [3]
