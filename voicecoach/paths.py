"""Where every file voicecoach keeps lives: the XDG base directories and the private folders.

History and enrolment are health data (and the enrolment a voice print): their folders are
created 0700 and their files 0600 by their owners (history.py, hearing/enroll.py).
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    """An XDG base directory: the variable when it is an absolute path (the spec says to ignore a
    relative one), else the fallback under the home folder."""
    base = os.environ.get(variable, "")
    return Path(base) if os.path.isabs(base) else Path.home() / fallback


def config_file() -> Path:
    """$XDG_CONFIG_HOME/voicecoach/config.yaml, ~/.config when unset."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "voicecoach" / "config.yaml"


def history_file() -> Path:
    """$XDG_DATA_HOME/voicecoach/history.sqlite3, ~/.local/share when unset."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "voicecoach" / "history.sqlite3"


def enrollment_file() -> Path:
    """enrollment.npz beside the history database: private like it."""
    return history_file().with_name("enrollment.npz")


def speech_cache() -> Path:
    """$XDG_CACHE_HOME/voicecoach/speech, ~/.cache when unset: rendered phrases, safe to delete."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "voicecoach" / "speech"


def systemd_user_units() -> Path:
    """$XDG_CONFIG_HOME/systemd/user, where systemd looks for a user's own units (reminders)."""
    return _xdg("XDG_CONFIG_HOME", ".config") / "systemd" / "user"


def runtime_dir() -> Path:
    """$XDG_RUNTIME_DIR/voicecoach, else a private folder in /tmp (created 0700): the session lock."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "voicecoach" if base else Path("/tmp") / f"voicecoach-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_dirs(directory: Path) -> None:
    """Create `directory` and its missing parents 0700 whatever the umask (health data lives
    there); directories that already exist are left as they are."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)
