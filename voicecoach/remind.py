"""`voicecoach remind`: short spoken nudges toward the daily dose, opt-in, from systemd user timers.

A reminder is one sentence ("Time for your hamstring stretch. You have done 1 of 3 today."),
never a session: the person starts the stretch when they are ready. It says nothing once
today's target is met or while a session is running, so it never nags or talks over the coach.
`--install` writes a timer and a oneshot service to $XDG_CONFIG_HOME/systemd/user; systemctl
is called only when the user manager answers, otherwise we print the commands to run.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from voicecoach.audio import RATE
from voicecoach.paths import systemd_user_units
from voicecoach.routine import Routine

UNIT = "voicecoach-remind"
DEFAULT_TIMES = ("09:00", "13:00", "18:00")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def clock_time(text: str) -> str:
    """argparse type for --at: HH:MM on a 24-hour clock, normalized to two digits."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day like 09:00 or 18:30")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def reminder_text(routine: Routine, done: int) -> str:
    """The one sentence spoken: what to do and how far along today is."""
    name = routine.name[:1].lower() + routine.name[1:]
    return f"Time for your {name}. You have done {done} of {routine.daily_target} today."


def remind_now(routine: Routine, done: int, speaker: Optional[str], speaker_file: Optional[Path],
               voice: Optional[str], rate: Optional[int], volume: Optional[float]) -> str:
    """Speak the reminder unless the target is met or a session runs; the line to print."""
    from voicecoach.instance import running_pid
    if done >= routine.daily_target:
        return f"no reminder: today's target is met ({done} of {routine.daily_target} rounds)"
    if running_pid() is not None:
        return "no reminder: a session is running"
    from voicecoach.devices import FileSpeaker, PyAudioSpeaker, open_pyaudio, play
    from voicecoach.settings import PersonSettings
    from voicecoach.speech import Voice, earcon
    text = reminder_text(routine, done)
    settings = PersonSettings(voice=voice, rate=rate, volume=volume).voice_for(routine)
    samples = np.concatenate([earcon("start"), np.zeros(RATE // 5, np.int16), Voice(settings).render(text).samples])
    if speaker_file is not None:
        out = FileSpeaker(speaker_file)
        play(out, samples)
        return f"reminded: {text}"
    pa = open_pyaudio()
    try:
        play(PyAudioSpeaker(pa, speaker), samples)
    finally:
        pa.terminate()
    return f"reminded: {text}"


def units(times: Sequence[str], command: Sequence[str]) -> Dict[str, str]:
    """The timer and its oneshot service. Persistent=false: a reminder missed while the Pi was
    off is not spoken late at boot."""
    exec_start = " ".join(shlex.quote(part) for part in command)
    service = ("[Unit]\nDescription=voicecoach: a spoken stretching reminder (silent once today's "
               "target is met)\n\n[Service]\nType=oneshot\n"
               f"ExecStart={exec_start} remind --now\n")
    calendar = "".join(f"OnCalendar=*-*-* {t}:00\n" for t in times)
    timer = (f"[Unit]\nDescription=voicecoach: stretching reminders at {', '.join(times)}\n\n"
             f"[Timer]\n{calendar}AccuracySec=30s\nPersistent=false\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def _systemctl_works() -> bool:
    try:
        return subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _systemctl(commands: List[List[str]]) -> List[str]:
    """Run `systemctl --user ...` commands when the user manager answers, else say what to run."""
    if not _systemctl_works():
        todo = " && ".join("systemctl --user " + " ".join(c) for c in commands)
        return ["systemd user services are not reachable from here; in your login session run:",
                f"  {todo}"]
    for c in commands:
        subprocess.run(["systemctl", "--user", *c], check=True, capture_output=True, timeout=30)
    return [f"ran: systemctl --user {' '.join(c)}" for c in commands]


def install(times: Sequence[str], directory: Optional[Path] = None) -> List[str]:
    """Write (or rewrite) the units and enable the timer; the lines to print."""
    directory = directory or systemd_user_units()
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in units(times, [sys.executable, "-m", "voicecoach"]).items():
        (directory / name).write_text(text)
    return ([f"wrote {directory / UNIT}.timer and .service: reminders at {', '.join(times)}"]
            + _systemctl([["daemon-reload"], ["enable", "--now", f"{UNIT}.timer"]]))


def remove(directory: Optional[Path] = None) -> List[str]:
    """Disable the timer and delete the units (and the enable link); the lines to print."""
    directory = directory or systemd_user_units()
    timer = f"{UNIT}.timer"
    paths = [directory / timer, directory / f"{UNIT}.service", directory / "timers.target.wants" / timer]
    if not any(p.exists() or p.is_symlink() for p in paths):
        return ["no reminders were installed"]
    works = _systemctl_works()
    lines = _systemctl([["disable", "--now", timer]]) if works else []
    for p in paths:
        p.unlink(missing_ok=True)
    lines.append(f"removed {directory / UNIT}.timer and .service")
    return lines + _systemctl([["daemon-reload"]] if works else [["stop", timer], ["daemon-reload"]])


def today_done(db: Optional[Path]) -> int:
    from voicecoach.history import History
    history = History(db)
    try:
        return history.rounds_on(date.today())
    finally:
        history.close()
