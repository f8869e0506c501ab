"""voicecoach: an offline, hands-free voice coach for guided stretching.

The library under the `voicecoach` command: load a routine, run a session on devices you opened,
read the history. Everything else (the command line, the doctor, reminders) is built on these.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

# Our matrices are tiny (the echo filter's 17x17 fit); OpenBLAS's worker threads only spin
# between calls, and took a whole core from the 10 ms speaker loop (docs/benchmarks.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
__all__ = ["load_routine", "run_session", "read_history", "PersonSettings", "OutputSettings", "__version__"]

if TYPE_CHECKING:
    from voicecoach.coach import Result
    from voicecoach.devices import Microphone, Speaker
    from voicecoach.history import History
    from voicecoach.routine import Routine
    from voicecoach.settings import OutputSettings, PersonSettings


def load_routine(path: Union[str, Path, None] = None) -> "Routine":
    """A routine file, checked (RoutineError says file:line:column and what to fix); the built-in
    hamstring stretch when `path` is None."""
    from voicecoach import routine
    return routine.load_routine(path) if path is not None else routine.builtin_routine()


def run_session(routine: "Routine", speaker: "Speaker", microphone: "Optional[Microphone]" = None, *,
                person: "Optional[PersonSettings]" = None, outputs: "Optional[OutputSettings]" = None,
                live: bool = True) -> "Result":
    """Run one session of `routine` on opened devices (voicecoach.devices), closing them at the end;
    without a microphone voice stop is off. live=False for file devices (repeatable, fast).
    The Result has the outcome, rounds done and exit code; rounds are saved in the history."""
    from voicecoach.launch import run_session as run
    from voicecoach.settings import OutputSettings, PersonSettings
    return run(routine, speaker, microphone, person=person or PersonSettings(),
               outputs=outputs or OutputSettings(), live=live)


def read_history(db: Union[str, Path, None] = None) -> "History":
    """The history of rounds done (default: the user's, in paths.history_file()); close() it after."""
    from voicecoach.history import History
    return History(db)


def __getattr__(name: str):
    """PersonSettings and OutputSettings on first use, so `import voicecoach` stays light."""
    if name in ("PersonSettings", "OutputSettings"):
        from voicecoach import settings
        return getattr(settings, name)
    raise AttributeError(f"module 'voicecoach' has no attribute {name!r}")
