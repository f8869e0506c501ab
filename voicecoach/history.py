"""The local record of completed rounds: the daily dose the person and their clinician check.

A session must never fail because the record cannot be written (read-only card, full disk, a
locked database): writes that fail are kept in memory, reported through return values, and
retried on every later write and at close. Every write is committed durably (WAL journal,
synchronous=FULL) before the call returns, so a power cut loses nothing already reported saved.

Storage: one SQLite file, owner-only (0600, in a 0700 directory): it is health data.
`rows()`/`export_csv()` give one row per completed round, the shape a clinician's spreadsheet
wants (see ROW_FIELDS); a session's outcome is `running` while this process runs it, and
`interrupted` when it was started but never ended (the process died).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple
from urllib.parse import quote

from voicecoach.paths import history_file, private_dirs

OUTCOMES = ("completed", "safety", "stopped", "mic-lost", "error")
ROW_FIELDS = ("day", "round_finished", "session_id", "routine", "session_started", "outcome",
              "stop_word", "stopped_at", "round", "holds", "shortest_hold_seconds")
"""Columns of rows()/export_csv(): `holds` is "side:seconds;..." in the order held, e.g.
"left:10.00;right:10.01"; `stop_word`/`stopped_at` say what ended the session and where."""
SESSION_FIELDS = ("id", "routine", "started", "ended", "outcome", "stop_word", "stopped_at",
                  "rounds")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    routine TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    outcome TEXT,            -- NULL until ended: read back as running/interrupted
    stop_word TEXT,
    stopped_at TEXT
);
CREATE TABLE IF NOT EXISTS rounds (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    round INTEGER NOT NULL,
    finished TEXT NOT NULL,
    day TEXT NOT NULL,       -- date of `finished`, for daily counts
    PRIMARY KEY (session_id, round)
);
CREATE TABLE IF NOT EXISTS holds (
    session_id INTEGER NOT NULL,
    round INTEGER NOT NULL,
    position INTEGER NOT NULL,
    side TEXT NOT NULL,
    started TEXT NOT NULL,
    seconds REAL NOT NULL,   -- measured, not prescribed
    PRIMARY KEY (session_id, round, position)
);
CREATE INDEX IF NOT EXISTS rounds_day ON rounds(day);
"""


class HistoryError(Exception):
    """The history file cannot be read (corrupt, not a database, unreadable)."""


@dataclass(frozen=True)
class Hold:
    """One side held once; `seconds` is the measured duration."""
    side: str
    started: datetime
    seconds: float


class _Session:
    """A session started through this History; `db_id` stays None until it is saved."""

    def __init__(self, routine: str, started: datetime, db_id: Optional[int] = None,
                 mine: bool = True):
        self.routine, self.started, self.db_id = routine, started, db_id
        self.mine = mine  # started by this process, so "running" rather than "interrupted"
        self.ended = False


def open_private(path: Path, flags: int = os.O_RDWR) -> int:
    """A new file, 0600 whatever the umask, as an open descriptor; FileExistsError if it exists
    (O_EXCL: never reuses a file someone else created with looser permissions)."""
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class History:
    """Durable, owner-only round log that degrades to memory instead of failing a session."""

    def __init__(self, path: Optional[Path] = None, timeout: float = 2.0):
        """`timeout`: seconds to wait for a lock held by another process before keeping the
        write pending; short, because the person is mid-stretch while we wait."""
        self.path = Path(path) if path is not None else history_file()
        self._timeout = timeout
        self._conn: Optional[sqlite3.Connection] = None
        self._pending: List[Tuple[Any, ...]] = []
        self._sessions: Dict[int, _Session] = {}
        self._current: Optional[_Session] = None
        self._lock = threading.RLock()

    # -- writing -----------------------------------------------------------------------------

    def start_session(self, routine: str, started: datetime) -> Optional[int]:
        """Record a session start; its id, or None if it is only kept in memory for now."""
        with self._lock:
            session = _Session(routine, started)
            self._current = session
            self._pending.append(("session", session))
            self._flush()
            return session.db_id

    def log_round(self, session_id: Optional[int], round_no: int, holds: Sequence[Hold],
                  finished: datetime) -> bool:
        """Record a completed round; True once it is on disk, False if kept pending.

        `session_id` None means the session last started here (whose start was not saved)."""
        with self._lock:
            session = self._session(session_id)
            self._pending.append(("round", session, round_no, tuple(holds), finished))
            return self._flush()

    def end_session(self, session_id: Optional[int], outcome: str, ended: datetime,
                    word: Optional[str] = None, where: Optional[str] = None) -> bool:
        """Record how a session ended (`word` heard, `where` in the routine); True if saved."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        with self._lock:
            session = self._session(session_id)
            session.ended = True
            self._pending.append(("end", session, outcome, ended, word, where))
            return self._flush()

    @property
    def pending(self) -> int:
        """Records (session starts, rounds, endings) held in memory, not yet on disk."""
        return len(self._pending)

    def close(self) -> None:
        """Try once more to save pending records, then release the file."""
        with self._lock:
            self._flush()
            self._drop()

    def _session(self, session_id: Optional[int]) -> _Session:
        if session_id is None:
            if self._current is None:
                raise ValueError("no session started: call start_session first")
            return self._current
        if session_id not in self._sessions:
            self._sessions[session_id] = _Session("", datetime.min, session_id, mine=False)
        return self._sessions[session_id]

    def _flush(self) -> bool:
        """Write every pending record in one transaction; on failure keep them all."""
        if not self._pending:
            return True
        new_ids: Dict[_Session, int] = {}
        try:
            conn = self._writer()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for record in self._pending:
                    self._write(conn, record, new_ids)
                conn.execute("COMMIT")
            except sqlite3.Error:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the connection is dropped below anyway
                raise
        except (sqlite3.Error, OSError):
            self._drop()
            return False
        for session, db_id in new_ids.items():
            session.db_id = db_id
            self._sessions[db_id] = session
        self._pending.clear()
        return True

    @staticmethod
    def _write(conn: sqlite3.Connection, record: Tuple[Any, ...],
               new_ids: Dict[_Session, int]) -> None:
        kind, session = record[0], record[1]
        if kind == "session":
            cursor = conn.execute("INSERT INTO sessions (routine, started) VALUES (?, ?)",
                                  (session.routine, _stamp(session.started)))
            new_ids[session] = cursor.lastrowid  # type: ignore[assignment]
            return
        sid = session.db_id if session.db_id is not None else new_ids[session]
        if kind == "round":
            _, _, round_no, holds, finished = record
            conn.execute("INSERT OR REPLACE INTO rounds VALUES (?, ?, ?, ?)",
                         (sid, round_no, _stamp(finished), finished.date().isoformat()))
            conn.execute("DELETE FROM holds WHERE session_id = ? AND round = ?", (sid, round_no))
            conn.executemany("INSERT INTO holds VALUES (?, ?, ?, ?, ?, ?)",
                             [(sid, round_no, i, h.side, _stamp(h.started), float(h.seconds))
                              for i, h in enumerate(holds)])
        else:
            _, _, outcome, ended, word, where = record
            conn.execute("UPDATE sessions SET ended = ?, outcome = ?, stop_word = ?, "
                         "stopped_at = ? WHERE id = ?", (_stamp(ended), outcome, word, where, sid))

    def _writer(self) -> sqlite3.Connection:
        if self._conn is None:
            self._create_files()
            conn = self._connect("rwc")
            try:
                conn.execute("PRAGMA journal_mode=WAL")  # readers never block the session
                conn.execute("PRAGMA synchronous=FULL")  # durable once COMMIT returns
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _create_files(self) -> None:
        """Create missing directories 0700 and the database 0600 whatever the umask.

        SQLite gives new -wal and -shm files the database file's permissions."""
        private_dirs(self.path.parent)
        for suffix in ("-wal", "-shm"):
            try:  # left read-only by a reader while the database was read-only: repair
                os.chmod(f"{self.path}{suffix}", 0o600)
            except OSError:
                pass  # absent, or not ours: SQLite reports any real problem
        try:
            os.close(open_private(self.path))
        except FileExistsError:
            return

    def _connect(self, mode: str) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path.absolute()))}?mode={mode}"
        return sqlite3.connect(uri, uri=True, timeout=self._timeout, isolation_level=None,
                               check_same_thread=False)

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass  # closing a broken connection: nothing left to save through it
            self._conn = None

    # -- reading -----------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any] = ()) -> List[sqlite3.Row]:
        """Run a read; a missing or still empty file reads as no history at all."""
        with self._lock:
            if self._conn is None and not self.path.exists():
                return []
            try:
                conn = self._conn or self._reader()
                try:
                    conn.row_factory = sqlite3.Row
                    tables = {r[0] for r in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'")}
                    if not {"sessions", "rounds", "holds"} <= tables:
                        return []
                    return conn.execute(sql, params).fetchall()
                finally:
                    conn.row_factory = None
                    if conn is not self._conn:
                        conn.close()
            except sqlite3.Error as e:
                raise HistoryError(f"{self.path}: cannot read the history ({e}); "
                                   "the file may be damaged or not a voicecoach history") from None

    def _reader(self) -> sqlite3.Connection:
        try:
            return self._connect("rw")
        except sqlite3.OperationalError:
            return self._connect("ro")  # read-only media: reading still works

    def _pending_days(self) -> List[date]:
        return [record[4].date() for record in self._pending if record[0] == "round"]

    def rounds_on(self, day: date) -> int:
        """Completed rounds finished on `day`, counting those still pending in memory."""
        saved = self._query("SELECT COUNT(*) FROM rounds WHERE day = ?", (day.isoformat(),))
        return (saved[0][0] if saved else 0) + self._pending_days().count(day)

    def days(self, n: int = 7, today: Optional[date] = None) -> List[Tuple[date, int]]:
        """Completed rounds per day for the last `n` days (oldest first, zeros included)."""
        today = today or date.today()
        first = today - timedelta(days=n - 1)
        counts = {d: 0 for d in (first + timedelta(days=i) for i in range(n))}
        for row in self._query("SELECT day, COUNT(*) FROM rounds WHERE day BETWEEN ? AND ? "
                               "GROUP BY day", (first.isoformat(), today.isoformat())):
            counts[date.fromisoformat(row[0])] += row[1]
        for day in self._pending_days():
            if day in counts:
                counts[day] += 1
        return list(counts.items())

    def _outcome(self, session_id: int, outcome: Optional[str]) -> str:
        if outcome:
            return outcome
        session = self._sessions.get(session_id)
        return "running" if session and session.mine and not session.ended else "interrupted"

    def sessions(self) -> List[Dict[str, Any]]:
        """Every saved session, oldest first, including stopped and safety-stopped ones."""
        rows = self._query("SELECT s.id, s.routine, s.started, s.ended, s.outcome, s.stop_word, "
                           "s.stopped_at, (SELECT COUNT(*) FROM rounds r WHERE r.session_id "
                           "= s.id) FROM sessions s ORDER BY s.started, s.id")
        result = [dict(zip(SESSION_FIELDS, row)) for row in rows]
        for session in result:
            session["outcome"] = self._outcome(session["id"], session["outcome"])
        return result

    def rows(self) -> List[Dict[str, Any]]:
        """One flat row per saved completed round (ROW_FIELDS), oldest first."""
        holds: Dict[Tuple[int, int], List[Tuple[str, float]]] = {}
        for sid, round_no, side, seconds in self._query(
                "SELECT session_id, round, side, seconds FROM holds "
                "ORDER BY session_id, round, position"):
            holds.setdefault((sid, round_no), []).append((side, seconds))
        result = []
        for row in self._query(
                "SELECT r.day, r.finished, r.session_id, s.routine, s.started, s.outcome, "
                "s.stop_word, s.stopped_at, r.round FROM rounds r JOIN sessions s "
                "ON s.id = r.session_id ORDER BY r.finished, r.session_id, r.round"):
            held = holds.get((row[2], row[8]), [])
            result.append(dict(zip(ROW_FIELDS, (
                *row[:5], self._outcome(row[2], row[5]), *row[6:],
                ";".join(f"{side}:{seconds:.2f}" for side, seconds in held),
                round(min(s for _, s in held), 2) if held else None))))
        return result

    def export_csv(self, fp: TextIO) -> None:
        """Header, then one row per completed round with its session's outcome."""
        writer = csv.DictWriter(fp, fieldnames=ROW_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())

    def export_json(self, fp: TextIO) -> None:
        """{"sessions": [...], "rounds": [...]} with the same fields as sessions()/rows()."""
        json.dump({"sessions": self.sessions(), "rounds": self.rows()}, fp, indent=2)
        fp.write("\n")
