"""The keyword spotter in a process of its own, for live sessions.

pocketsphinx holds Python's GIL while it decodes: a verification (~80-150 ms) in a thread
stalled the coach's 10 ms speaker loop, so the speaker underran, counts slipped and the echo's
delay jumped (measured through PulseAudio). A child process (`python -m voicecoach.hearing.worker`)
decodes instead; frames go to it over a pipe and detections come back as JSON lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from typing import List, Optional, Sequence

import numpy as np

from voicecoach.devices import MicrophoneLost
from voicecoach.hearing import EngineMissing
from voicecoach.hearing.engines import make_spotter
from voicecoach.hearing.words import Detection, Keyword

HEADER = struct.Struct("<i")
"""Each message: a sample count, then that many int16 samples; -1 asks for reset()."""
MISSING = "missing: "
"""How the child's first line says the hearing it needs is not installed (EngineMissing)."""


class ProcessSpotter:
    """The Spotter interface, served by a child process; `close()` waits until it has ended."""

    def __init__(self, keywords: Sequence[Keyword], engine: str = "auto") -> None:
        spec = json.dumps({"engine": engine, "keywords": [[k.phrase, k.action, k.sensitivity] for k in keywords]})
        self._proc = subprocess.Popen([sys.executable, "-m", "voicecoach.hearing.worker", spec],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._found: "queue.Queue[Detection]" = queue.Queue()
        self._reader: Optional[threading.Thread] = None

    @property
    def pid(self) -> int:
        """The child's process id (bench/hearing.py measures the listener's memory by it)."""
        return self._proc.pid

    def wait_ready(self) -> None:
        """Block until the child's decoders are loaded (it loads while the microphone opens);
        raises ValueError with the child's reason if it could not start, EngineMissing if the
        hearing it needs is not installed here."""
        if self._reader is not None:
            return
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline().decode().strip()
        if first != "ready":
            self.close()
            if first.startswith(MISSING):
                raise EngineMissing(first[len(MISSING):])
            raise ValueError(first or "the keyword spotter could not start")
        self._reader = threading.Thread(target=self._read, name="spotter-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._found.put(Detection(**json.loads(line)))

    def _send(self, count: int, payload: bytes = b"") -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(HEADER.pack(count) + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise MicrophoneLost(f"the keyword spotter stopped ({exc})") from exc

    def process(self, frame: np.ndarray) -> List[Detection]:
        """Send the frame; return whatever the child has found so far (stream times as ever)."""
        self.wait_ready()
        samples = np.asarray(frame, dtype="<i2").ravel()
        self._send(len(samples), samples.tobytes())
        found = []
        while not self._found.empty():
            found.append(self._found.get_nowait())
        if not found and self._proc.poll() is not None:
            raise MicrophoneLost(f"the keyword spotter stopped (exit {self._proc.returncode})")
        return found

    def reset(self) -> None:
        self._send(-1)

    def close(self) -> None:
        if self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def serve(spec: str, stdin=None, stdout=None) -> int:
    """The child: read frames, write one JSON line per detection."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout
    try:
        wanted = json.loads(spec)
        spotter = make_spotter([Keyword(p, a, s) for p, a, s in wanted["keywords"]], wanted["engine"])
    except ValueError as exc:
        print(exc, file=stdout, flush=True)
        return 2
    except EngineMissing as exc:
        print(f"{MISSING}{exc}", file=stdout, flush=True)
        return 2
    print("ready", file=stdout, flush=True)
    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return 0
        (count,) = HEADER.unpack(header)
        if count < 0:
            spotter.reset()
            continue
        samples = np.frombuffer(stdin.read(2 * count), dtype="<i2")
        for d in spotter.process(samples):
            stdout.write(json.dumps(dataclasses.asdict(d)) + "\n")
            stdout.flush()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the session's to handle
    with contextlib.suppress(OSError):             # the coach's raised nice is for its speaker
        if os.getpriority(os.PRIO_PROCESS, 0) < 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    raise SystemExit(serve(sys.argv[1]))
