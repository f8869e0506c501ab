"""Two things at once, through the real command line: a second session is refused (exit 5)
without harming the first, and `history` reads while sessions write never fail or block them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Dict, List

from conftest import DATA, REPO, voicecoach
from voicecoach.history import History

MANY = (DATA / "routines" / "many-rounds.yaml").read_text()


def test_second_session_is_refused_and_the_first_is_unharmed(tmp_path: Path,
                                                             user_env: Dict[str, str]) -> None:
    routine = tmp_path / "many.yaml"
    routine.write_text(MANY)
    db = tmp_path / "h.db"
    first = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", str(routine), "--text",
                              "--db", str(db)], env=user_env, cwd=REPO, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "[start]" in first.stdout.readline()
    second = voicecoach("run", str(routine), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                        "--db", str(db), env=user_env)
    assert second.returncode == 5, second.stderr
    assert second.stderr.splitlines() == [
        f"voicecoach: a session is already running (pid {first.pid}); say stop or run `voicecoach stop`"]
    assert not (tmp_path / "o.wav").exists()
    assert first.poll() is None                                # still running
    assert first.stdout.readline().strip()                     # and still coaching
    stop = voicecoach("stop", env=user_env)                    # ends it like the word stop
    assert stop.returncode == 0 and str(first.pid) in stop.stdout
    out, err = first.communicate(timeout=30)
    assert first.returncode == 4, err
    assert [s["outcome"] for s in History(db).sessions()] == ["stopped"]   # one session: the first
    after = voicecoach("run", str(routine), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                       "--db", str(db), env=user_env)
    assert after.returncode == 0, after.stderr                 # the lock went with the first


def test_history_reads_while_sessions_write(tmp_path: Path, user_env: Dict[str, str]) -> None:
    """Sessions back to back write rounds while `voicecoach history` and a library reader read."""
    routine = tmp_path / "many.yaml"
    routine.write_text(MANY)
    db = tmp_path / "h.db"
    sessions = 5
    results: List[subprocess.CompletedProcess] = []
    writing = threading.Event()
    writing.set()

    def write() -> None:
        try:
            for _ in range(sessions):
                results.append(voicecoach("run", str(routine), "--no-listen", "--speaker-file",
                                          str(tmp_path / "o.wav"), "--db", str(db), env=user_env))
        finally:
            writing.clear()

    writer = threading.Thread(target=write)
    writer.start()
    cli_reads: List[int] = []
    lib_reads: List[int] = []
    failures: List[str] = []
    while writing.is_set():
        r = voicecoach("history", "--json", "--db", str(db), env=user_env, timeout=60)
        if r.returncode != 0 or r.stderr:
            failures.append(r.stderr)
        else:
            cli_reads.append(len(json.loads(r.stdout)["rounds"]))
        for _ in range(20):
            lib_reads.append(len(History(db).rows()))
    writer.join()
    assert not failures, failures[:3]
    assert all(r.returncode == 0 and "warning" not in r.stderr for r in results), \
        [r.stderr for r in results]                             # no write was kept waiting
    assert len(cli_reads) >= 3 and cli_reads == sorted(cli_reads)
    assert lib_reads == sorted(lib_reads) and len(set(lib_reads)) > 2   # reads saw it grow
    assert len(History(db).rows()) == 20 * sessions
