"""`voicecoach button`: an optional GPIO push button that starts a session, or stops the running one.

Hands are busy holding a leg on a step: one big button by the step is the easiest control.
gpiozero is imported only here and only when the command runs, so the product installs and
works without it (and off a Pi). A press while a session runs is a person stop (exit 4),
exactly like `voicecoach stop`; the session itself runs in its own process, as from a shortcut.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Optional, Sequence

from voicecoach.devices import DeviceError
from voicecoach.instance import running_pid, stop_running

MISSING = ("gpiozero is not installed (it is optional): sudo apt-get install python3-gpiozero "
           "python3-lgpio, then recreate the venv with --system-site-packages, or "
           ".venv/bin/pip install gpiozero lgpio")


class Toggle:
    """What a press does: stop the running session, else start one (a press while one is
    still starting is ignored, so a bouncy double press cannot start two)."""

    def __init__(self, run_args: Sequence[str] = ()) -> None:
        self.run_args = list(run_args)
        self.proc: Optional[subprocess.Popen] = None

    def press(self) -> str:
        pid = running_pid()
        if pid is not None:
            stop_running()
            return f"stopped the session (pid {pid})"
        if self.proc is not None and self.proc.poll() is None:
            return "a session is starting; press again to stop it"
        self.proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", *self.run_args],
                                     stdin=subprocess.DEVNULL)
        return f"started a session (pid {self.proc.pid})"


def serve(pin: int, run_args: Sequence[str] = ()) -> int:
    """Wait for presses on GPIO `pin` (BCM numbering) until stopped (Ctrl-C, SIGTERM)."""
    try:
        from gpiozero import Button
    except ImportError:
        raise DeviceError(MISSING) from None
    try:
        button = Button(pin, bounce_time=0.05)
    except Exception as exc:  # gpiozero raises many types: no pin factory, pin in use, not a Pi
        raise DeviceError(f"cannot use GPIO pin {pin} ({exc}); see the README, GPIO button, for the wiring") from exc
    toggle = Toggle(run_args)
    button.when_pressed = lambda: print(toggle.press(), flush=True)
    print(f"button on GPIO {pin}: press to start a session, press again to stop it", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        button.close()
    return 0
