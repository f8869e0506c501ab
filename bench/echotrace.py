"""`voicecoach` with its echo canceller's inputs and the speaker's writes recorded, for looking at
why a live session heard its own voice (bench/echoload.py --trace). Nothing in the product
changes: the same command line runs, with methods wrapped from outside.

Saved to the .npz named by VOICECOACH_TRACE when the session ends, all times on
time.monotonic() (the system's CLOCK_MONOTONIC, the same in the bench that records the
devices' monitors):
- played_at, played_start, played: each frame handed to the canceller as played (wall time,
  session time, samples);
- mic_at, mic_stamp, mic_counted, mic: each microphone frame cleaned (wall time, its stamp and
  where the canceller counted it, samples as heard);
- fit_at, fit_counted, fit_delay: each delay estimate (delay in samples, -99999 where no path);
- write_begin, write_end, write_underruns: each speaker write (ALSA's underrun count after it).
Usage: VOICECOACH_TRACE=out.npz python bench/echotrace.py run ...
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voicecoach import cli, devices  # noqa: E402
from voicecoach.hearing import echo  # noqa: E402

NO_PATH = -99999

_rows: Dict[str, List] = {k: [] for k in ("played_at", "played_start", "played", "mic_at", "mic_stamp",
                                           "mic_counted", "mic", "fit_at", "fit_counted", "fit_delay",
                                           "write_begin", "write_end", "write_underruns")}


def _wrap() -> None:
    played, clean, estimate = echo.EchoCanceller.played, echo.EchoCanceller.clean, echo.EchoCanceller._estimate
    write = devices.PyAudioSpeaker.write

    def traced_played(self, start, frame):
        _rows["played_at"].append(time.monotonic())
        _rows["played_start"].append(start)
        _rows["played"].append(np.array(frame, np.int16))
        return played(self, start, frame)

    def traced_clean(self, start, frame):
        _rows["mic_at"].append(time.monotonic())
        out = clean(self, start, frame)
        _rows["mic_stamp"].append(start)
        _rows["mic_counted"].append(self.counted)
        _rows["mic"].append(np.array(frame, np.int16))
        return out

    def traced_estimate(self):
        before = self.model
        estimate(self)
        _rows["fit_at"].append(time.monotonic())
        _rows["fit_counted"].append(self.counted)
        _rows["fit_delay"].append(self.model[0] if self.model is not None and self.model is not before
                                  else NO_PATH)

    def traced_write(self, frame):
        _rows["write_begin"].append(time.monotonic())
        try:
            return write(self, frame)
        finally:
            _rows["write_end"].append(time.monotonic())
            _rows["write_underruns"].append(devices.AlsaMessages.underruns)

    echo.EchoCanceller.played = traced_played
    echo.EchoCanceller.clean = traced_clean
    echo.EchoCanceller._estimate = traced_estimate
    devices.PyAudioSpeaker.write = traced_write


def _save(path: str) -> None:
    out = {}
    for k, v in _rows.items():
        if k in ("played", "mic"):
            out[k] = np.concatenate(v) if v else np.zeros(0, np.int16)
        else:
            out[k] = np.asarray(v, np.float64)
    np.savez_compressed(path, **out)


def main() -> int:
    path = os.environ["VOICECOACH_TRACE"]
    _wrap()
    try:
        return cli.main(sys.argv[1:])
    finally:
        _save(path)


if __name__ == "__main__":
    sys.exit(main())
