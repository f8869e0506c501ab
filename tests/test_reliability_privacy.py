"""Privacy: the history is owner-only from its first byte, and no code path opens a network
socket. The network guard is a `sitecustomize` loaded into every child Python: creating an
AF_INET/AF_INET6 socket or resolving a name is recorded and refused. (PulseAudio's own AF_UNIX
socket is made in C and is local; it is not what is being guarded.)"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import REPO, Pulse, voicecoach

GUARD = '''
import os, socket, traceback
_log = os.environ["VC_NET_LOG"]

def _record(what):
    with open(_log, "a") as f:
        f.write(f"ATTEMPT {what} in pid {os.getpid()}\\n" + "".join(traceback.format_stack()) + "\\n")

class _GuardedSocket(socket.socket):
    def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
        if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
            _record(f"socket(family={family})")
            raise PermissionError("network sockets are blocked in this test")
        super().__init__(family, type, proto, fileno)

def _no_resolve(*args, **kwargs):
    _record(f"getaddrinfo{args}")
    raise PermissionError("name resolution is blocked in this test")

socket.socket = _GuardedSocket
socket.SocketType = _GuardedSocket
socket.getaddrinfo = _no_resolve
socket.gethostbyname = _no_resolve
with open(_log, "a") as f:
    f.write(f"loaded {os.getpid()}\\n")
'''


@pytest.fixture
def guarded_env(tmp_path: Path, user_env: Dict[str, str]) -> Dict[str, str]:
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    path = os.pathsep.join(p for p in (str(guard), user_env.get("PYTHONPATH", "")) if p)
    return {**user_env, "PYTHONPATH": path, "VC_NET_LOG": str(tmp_path / "net.log")}


def attempts(env: Dict[str, str]) -> List[str]:
    log = Path(env["VC_NET_LOG"])
    return [line for line in log.read_text().splitlines() if line.startswith("ATTEMPT")]


def loaded(env: Dict[str, str]) -> int:
    return sum(line.startswith("loaded") for line in Path(env["VC_NET_LOG"]).read_text().splitlines())


def test_the_guard_catches_a_connection(guarded_env: Dict[str, str]) -> None:
    """Without this the test below would prove nothing."""
    r = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 9))"],
                       env=guarded_env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "blocked" in r.stderr
    assert len(attempts(guarded_env)) == 1


def test_no_command_opens_a_network_socket(tmp_path: Path, guarded_env: Dict[str, str]) -> None:
    env = guarded_env
    db = tmp_path / "h.db"
    wav = tmp_path / "o.wav"
    runs = [
        ["run", "--speaker-file", str(wav), "--db", str(db)],                       # listening
        ["run", "--no-listen", "--speaker-file", str(wav), "--db", str(db), "--timeline",
         str(tmp_path / "t.jsonl")],
        ["check", str(REPO / "docs" / "routine-example.yaml")],
        ["history", "--db", str(db)],
        ["history", "--json", "--db", str(db)],
        ["render"],
        ["voices"],
        ["stop"],
    ]
    for args in runs:
        r = voicecoach(*args, env=env)
        assert "blocked" not in r.stderr, (args, r.stderr)
        assert r.returncode in (0, 1), (args, r.stderr)     # stop: 1 (nothing running)
    assert loaded(env) >= len(runs)                          # the guard was in every child
    assert attempts(env) == []


@pytest.mark.pulse
def test_a_live_session_on_pulseaudio_opens_no_network_socket(pulse_address: str,  # noqa: F811
                                                              pulse: Pulse,
                                                              guarded_env: Dict[str, str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_SERVER", pulse_address)
    env = {**guarded_env, "PULSE_SERVER": pulse_address}
    mic, speaker = pulse.sink("mic"), pulse.sink("spk")
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", "--mic", f"{mic}.monitor",
                             "--speaker", speaker], env=env, cwd=REPO, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)                                           # devices open, listening, speaking
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert loaded(env) >= 1 and attempts(env) == []


def test_history_and_runtime_files_are_owner_only(tmp_path: Path, user_env: Dict[str, str]) -> None:
    """Default locations, with a umask of 0: directories 0700, files 0600, whatever the umask."""
    done = subprocess.run([sys.executable, "-m", "voicecoach", "run", "--no-listen", "--speaker-file",
                           str(tmp_path / "o.wav")], env=user_env, cwd=REPO, capture_output=True,
                          text=True, timeout=120, preexec_fn=lambda: os.umask(0))
    assert done.returncode == 0, done.stderr
    data = Path(user_env["XDG_DATA_HOME"]) / "voicecoach"
    runtime = Path(user_env["XDG_RUNTIME_DIR"]) / "voicecoach"
    for directory in (data, runtime):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = list(data.iterdir()) + list(runtime.iterdir())
    assert {f.name for f in files} >= {"history.sqlite3", "session.lock"}
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # a session writes no settings: nothing appears under the config directory
    assert list(Path(user_env["XDG_CONFIG_HOME"]).iterdir()) == []
