"""One session at a time per user, and a way for another process to stop it.

The running session holds an exclusive lock on a file in the user's runtime directory and
writes its pid there; `voicecoach stop` sends that pid SIGUSR1, which the session treats
exactly like the spoken word "stop".
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
from pathlib import Path
from typing import Optional

from voicecoach.paths import runtime_dir

STOP_SIGNAL = signal.SIGUSR1


class AlreadyRunning(RuntimeError):
    def __init__(self, pid: Optional[int]) -> None:
        super().__init__(f"a session is already running (pid {pid}); say stop or run `voicecoach stop`")
        self.pid = pid


class SessionLock:
    """Held for the whole session; released by the kernel even if the process is killed."""

    def __init__(self, directory: Optional[Path] = None) -> None:
        self.path = (directory or runtime_dir()) / "session.lock"
        self._fd: Optional[int] = None

    def __enter__(self) -> "SessionLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise AlreadyRunning(running_pid(self.path.parent)) from None
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # a full disk must not refuse the session: the lock holds without the pid
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def running_pid(directory: Optional[Path] = None) -> Optional[int]:
    """The pid of the running session, or None when no session holds the lock."""
    path = (directory or runtime_dir()) / "session.lock"
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_running(directory: Optional[Path] = None) -> Optional[int]:
    """Ask the running session to stop, as if the person said "stop"; its pid, or None."""
    pid = running_pid(directory)
    if pid is not None:
        try:
            os.kill(pid, STOP_SIGNAL)
        except ProcessLookupError:
            return None
    return pid
