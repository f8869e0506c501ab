"""Shared fixtures: an isolated user (XDG dirs), the CLI as a subprocess, PulseAudio virtual devices."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from voicecoach.pulse import SERVER_ARGS, load_loopback

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """A fresh user: own data, config and runtime dirs; the shared speech cache stays warm."""
    env = dict(os.environ)
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR"):
        path = tmp_path / name.lower()
        path.mkdir(mode=0o700)
        env[name] = str(path)
        monkeypatch.setenv(name, str(path))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def voicecoach(*args: str, env: Dict[str, str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """Run the real command line, as a shortcut script would."""
    return subprocess.run([sys.executable, "-m", "voicecoach", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, **kw)


class Pulse:
    """A PulseAudio server with per-test virtual speakers and microphones (null sinks)."""

    def __init__(self) -> None:
        self.modules: List[str] = []

    def sink(self, prefix: str = "vc") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.modules.append(pactl("load-module", "module-null-sink", f"sink_name={name}",
                                  "rate=16000", "channels=1").strip())
        return name

    def loopback(self, source: str, sink: str, latency_ms: int = 30, db: float = 0.0) -> str:
        """Couple a source into a sink at `db`: a speaker heard by a microphone."""
        module = load_loopback(pactl, source, sink, latency_ms, db)
        self.modules.append(module)
        return module

    def unload(self, module: str) -> None:
        pactl("unload-module", module)
        self.modules.remove(module)

    def cleanup(self) -> None:
        for m in reversed(self.modules):
            subprocess.run(["pactl", "unload-module", m], capture_output=True, env=HOST_ENV)
        self.modules.clear()


HOST_ENV = dict(os.environ)     # before any test moves XDG_RUNTIME_DIR, where libpulse looks
PULSE_LOG = Path(tempfile.gettempdir()) / "voicecoach-test-pulseaudio.log"
_started: List[bool] = []      # this run has started a server: starting another is a restart


def pactl(*args: str) -> str:
    return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True, timeout=20,
                          env=HOST_ENV).stdout


def pulse_running() -> bool:
    return subprocess.run(["pactl", "info"], capture_output=True, env=HOST_ENV).returncode == 0


def ensure_pulseaudio() -> None:
    """Start PulseAudio (as the CI user, root included) if none is running, in the host's
    environment so that its socket is where every test looks (a restart inside a test's moved
    XDG_RUNTIME_DIR put it where no test looked: CI, stop 10). Without the CPU-load limiter and
    real-time scheduling, the two ways a busy daemon ends itself; which one ended the CI's
    server mid-suite is not known, so its log is kept and shown on a restart."""
    if pulse_running():
        return
    log = f"\n(the earlier server's last log lines:\n{tail(PULSE_LOG)})" if _started else ""
    subprocess.run(["pulseaudio", *SERVER_ARGS, f"--log-target=file:{PULSE_LOG}"],
                   check=True, capture_output=True, env=HOST_ENV)
    deadline = time.monotonic() + 15
    while not pulse_running():
        if time.monotonic() > deadline:
            pytest.fail(f"PulseAudio did not start; its log:\n{tail(PULSE_LOG)}{log}")
        time.sleep(0.2)
    if _started:            # a restart: say why, so a dying server is seen, not silently papered over
        warnings.warn(f"PulseAudio was restarted{log}")
    _started.append(True)


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="session")
def pulse_server() -> Iterator[None]:
    if shutil.which("pulseaudio") is None or shutil.which("pactl") is None:
        pytest.fail("PulseAudio is not installed: scripts/test installs pulseaudio and pulseaudio-utils")
    ensure_pulseaudio()
    yield
    if _started:     # only a server this run started (pulseaudio -k: this user's, this runtime dir)
        subprocess.run(["pulseaudio", "-k"], capture_output=True, env=HOST_ENV, timeout=20)


@pytest.fixture
def pulse_address(pulse_server: None) -> str:
    """The server's socket, read per test: a restarted server may not reuse the old one."""
    ensure_pulseaudio()
    info = pactl("info")
    server = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("Server String:"))
    return server if server.startswith(("unix:", "tcp:")) else f"unix:{server}"


@pytest.fixture
def pulse_env(pulse_address: str, user_env: Dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """The isolated user, still reaching PulseAudio: for the CLI, and for pactl in this process."""
    monkeypatch.setenv("PULSE_SERVER", pulse_address)
    return {**user_env, "PULSE_SERVER": pulse_address}


@pytest.fixture
def pulse(pulse_server: None) -> Iterator[Pulse]:
    ensure_pulseaudio()     # a server was seen to die mid-suite (CI, stop 10): the next test restarts it
    p = Pulse()
    yield p
    p.cleanup()
