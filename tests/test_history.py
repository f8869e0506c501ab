"""History store on real SQLite files: durability, permissions, degraded disks, exports."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from voicecoach.history import ROW_FIELDS, History, HistoryError, Hold

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 5, 1, 8, 0, 0)


def holds(at: datetime = T0) -> list:
    return [Hold("left", at, 10.004), Hold("right", at + timedelta(seconds=13), 9.996)]


def saved_rounds(path: Path) -> int:
    """Count rounds through an independent connection: what another process would see."""
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]


def test_files_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "data" / "voicecoach" / "history.sqlite3"
        h = History(path)
        assert h.log_round(h.start_session("r", T0), 1, holds(), T0)
        for directory in (path.parent, path.parent.parent):
            assert oct(directory.stat().st_mode & 0o777) == oct(0o700)
        files = list(path.parent.iterdir())
        assert {f.name for f in files} >= {"history.sqlite3", "history.sqlite3-wal"}
        for f in files:
            assert oct(f.stat().st_mode & 0o777) == oct(0o600), f
        h.close()
    finally:
        os.umask(old)


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert History().path == tmp_path / "voicecoach" / "history.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", "relative")  # the XDG spec says ignore it
    monkeypatch.setenv("HOME", str(tmp_path))
    assert History().path == tmp_path / ".local/share/voicecoach/history.sqlite3"


def test_round_is_on_disk_before_log_round_returns(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    h = History(path)
    sid = h.start_session("Hamstring", T0)
    assert sid is not None and saved_rounds(path) == 0
    assert h.log_round(sid, 1, holds(), T0 + timedelta(seconds=30))
    assert saved_rounds(path) == 1  # no close(): committed, visible to another connection
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_days_and_rounds_on(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite3")
    today = date(2024, 5, 3)
    for day_offset, rounds in ((0, 2), (2, 3), (9, 1)):
        start = datetime.combine(today - timedelta(days=day_offset), T0.time())
        sid = h.start_session("r", start)
        for n in range(1, rounds + 1):
            h.log_round(sid, n, holds(start), start + timedelta(minutes=n))
        h.end_session(sid, "completed", start + timedelta(minutes=5))
    assert h.rounds_on(today) == 2 and h.rounds_on(today - timedelta(days=1)) == 0
    assert h.days(4, today) == [(date(2024, 4, 30), 0), (date(2024, 5, 1), 3),
                                (date(2024, 5, 2), 0), (date(2024, 5, 3), 2)]
    assert sum(n for _, n in h.days(10, today)) == 6


def test_csv_and_json_exports(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite3")
    sid = h.start_session("Hamstring", T0)
    h.log_round(sid, 1, holds(), T0 + timedelta(seconds=30))
    h.end_session(sid, "safety", T0 + timedelta(seconds=40), word="pain", where="round 2, left")
    running = h.start_session("Hamstring", T0 + timedelta(hours=4))
    h.log_round(running, 1, holds(), T0 + timedelta(hours=4, seconds=30))
    out = io.StringIO()
    h.export_csv(out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == ROW_FIELDS and len(rows) == 3
    first = dict(zip(rows[0], rows[1]))
    assert first["holds"] == "left:10.00;right:10.00" and first["outcome"] == "safety"
    assert (first["stop_word"], first["stopped_at"], first["day"]) == ("pain", "round 2, left",
                                                                        "2024-05-01")
    assert dict(zip(rows[0], rows[2]))["outcome"] == "running"
    out = io.StringIO()
    h.export_json(out)
    data = json.loads(out.getvalue())
    assert [s["outcome"] for s in data["sessions"]] == ["safety", "running"]
    assert data["sessions"][0]["rounds"] == 1 and len(data["rounds"]) == 2


def test_a_session_whose_process_died_reads_as_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    dead = History(path)
    dead.log_round(dead.start_session("r", T0), 1, holds(), T0)
    # the process dies here: no end_session, no close
    assert [s["outcome"] for s in History(path).sessions()] == ["interrupted"]
    assert History(path).rows()[0]["outcome"] == "interrupted"


def test_locked_database_keeps_rounds_pending_then_flushes(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    h = History(path, timeout=0.05)
    sid = h.start_session("r", T0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
    assert h.log_round(sid, 1, holds(), T0) is False
    assert h.end_session(sid, "completed", T0) is False
    assert h.pending == 2 and h.rounds_on(T0.date()) == 1  # pending still counts today
    other.execute("COMMIT")
    other.close()
    h.close()  # retried at close
    assert h.pending == 0 and saved_rounds(path) == 1
    assert History(path).sessions()[0]["outcome"] == "completed"


READ_ONLY_SCENARIO = """
import os, sys, sqlite3
from datetime import datetime
from pathlib import Path
from voicecoach.history import History, Hold
d = Path(sys.argv[1]); path = d / "sub" / "h.sqlite3"; t = datetime(2024, 5, 1, 8)
os.chmod(d, 0o500)                     # read-only directory: nothing can be created
h = History(path)
assert h.start_session("r", t) is None            # the session still runs, in memory
assert h.log_round(None, 1, [Hold("left", t, 10.0)], t) is False
assert h.pending == 2 and h.rounds_on(t.date()) == 1
os.chmod(d, 0o700)                     # writable again: the next write flushes everything
assert h.log_round(None, 2, [Hold("left", t, 10.0)], t) is True and h.pending == 0
assert h.end_session(None, "completed", t) is True
h.close()
os.chmod(path, 0o400)                  # read-only database file
h = History(path)
assert h.start_session("r", t) is None and h.pending == 1
assert History(path).rounds_on(t.date()) == 2     # reading still works
os.chmod(path, 0o600)
h.close()
assert h.pending == 0 and len(History(path).sessions()) == 2
print("ok")
"""


def test_read_only_directory_and_database(tmp_path: Path) -> None:
    """As root, runs without the capabilities that let root ignore file permissions."""
    command = [sys.executable, "-c", READ_ONLY_SCENARIO, str(tmp_path)]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: permissions cannot be enforced")
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


DISK_FULL_SCENARIO = """
import resource, signal, sys
from datetime import datetime
from pathlib import Path
from voicecoach.history import History, Hold
path = Path(sys.argv[1]); t = datetime(2024, 5, 1, 8)
h = History(path)
sid = h.start_session("r", t)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size, hard))  # the disk is full
many = [Hold("left", t, 10.0)] * 2000
assert h.log_round(sid, 1, many, t) is False and h.pending == 1
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
assert h.log_round(sid, 2, many, t) is True and h.pending == 0
h.close()
assert History(path).rounds_on(t.date()) == 2
print("ok")
"""


def test_full_disk_keeps_rounds_pending_then_flushes(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", DISK_FULL_SCENARIO, str(tmp_path / "h.db")],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr


def test_reader_and_writer_do_not_block_each_other(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    writer = History(path, timeout=1.0)
    sid = writer.start_session("r", T0)
    failures: list = []
    seen: list = []

    def read() -> None:
        reader = History(path, timeout=1.0)
        try:
            for _ in range(100):
                seen.append(reader.rounds_on(T0.date()))
                reader.rows()
        except Exception as e:  # collected for the assertion below
            failures.append(e)

    thread = threading.Thread(target=read)
    thread.start()
    results = [writer.log_round(sid, n, holds(), T0) for n in range(1, 101)]
    thread.join(timeout=30)
    assert not failures and all(results) and writer.pending == 0
    assert seen == sorted(seen) and saved_rounds(path) == 100


def test_corrupt_file_raises_history_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 100)
    h = History(path)
    with pytest.raises(HistoryError, match="cannot read the history"):
        h.rows()
    with pytest.raises(HistoryError):
        h.days()
    assert h.start_session("r", T0) is None and h.pending == 1  # the session still runs


def test_missing_file_reads_as_empty_and_is_not_created(tmp_path: Path) -> None:
    h = History(tmp_path / "none" / "h.sqlite3")
    assert h.rows() == [] and h.sessions() == [] and h.rounds_on(T0.date()) == 0
    assert not (tmp_path / "none").exists()


def test_bad_outcome_is_a_programming_error(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite3")
    with pytest.raises(ValueError):
        h.end_session(h.start_session("r", T0), "finished", T0)
