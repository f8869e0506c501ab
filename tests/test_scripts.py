"""The shortcut scripts as a launcher, cron or an SSH phone shortcut runs them: no terminal, stdin
closed, a one-line result, voicecoach's exit code; one session at a time; stop from elsewhere.
Real processes throughout: `--text` sessions run in real time, so they wait like live ones."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, voicecoach
from voicecoach.instance import STOP_SIGNAL, running_pid

SCRIPTS = REPO / "scripts"


def script(name: str, *args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """As from cron or `ssh host scripts/stretch`: no TTY, stdin closed, own session."""
    return subprocess.run([str(SCRIPTS / name), *args], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, start_new_session=True)


def start_waiting_session(env: dict) -> subprocess.Popen:
    """`scripts/stretch --text`: a real-time session that waits until stopped."""
    proc = subprocess.Popen([str(SCRIPTS / "stretch"), "--text"], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while running_pid() is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the session never took the lock"
        time.sleep(0.05)
    return proc


def test_stretch_quiet_one_line_and_exit_code(user_env, tmp_path):
    r = script("stretch", "--no-listen", "--speaker-file", str(tmp_path / "out.wav"), "--db",
               str(tmp_path / "h.db"), env=user_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["completed: 1 round(s) done"]
    assert r.stderr == ""


def test_stretch_passes_on_a_usage_error(user_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsetup: [Stand.]\nholdseconds: 10\n")
    r = script("stretch", str(bad), env=user_env)
    assert r.returncode == 2 and r.stdout == ""
    assert f"{bad}:3:1: unknown key 'holdseconds'" in r.stderr


def test_second_press_refused_and_stop_from_another_shortcut(user_env):
    first = start_waiting_session(user_env)
    try:
        second = script("stretch", "--text", env=user_env, timeout=30)
        assert second.returncode == 5
        assert second.stderr.strip() == (f"voicecoach: a session is already running (pid {running_pid()}); "
                                         "say stop or run `voicecoach stop`")
        t0 = time.monotonic()
        stop = script("stop", env=user_env, timeout=30)
        assert stop.returncode == 0 and stop.stdout.startswith("stopped the session (pid ")
        _, err = first.communicate(timeout=10)
        assert time.monotonic() - t0 < 5  # instant, not at the end of the routine
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 4
    assert err.splitlines()[-1].startswith("stopped: 0 round(s) done; stopped on 'stop shortcut'")
    assert running_pid() is None


def test_cli_stop_is_the_same_as_the_script(user_env):
    first = start_waiting_session(user_env)
    try:
        r = voicecoach("stop", env=user_env)
        assert r.returncode == 0, r.stderr
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 4


def test_stop_with_nothing_running(user_env):
    r = script("stop", env=user_env)
    assert r.returncode == 1 and r.stderr.strip() == "voicecoach: no session is running"


def test_a_stop_while_the_session_starts_stops_it(user_env, tmp_path):
    """`voicecoach stop` the moment the session holds its lock, its speech still rendering into a
    cold cache: it ends as stopped (exit 4), not killed by the stop signal (seen on a busy
    machine, where starting takes seconds)."""
    env = {**user_env, "XDG_CACHE_HOME": str(tmp_path / "cold-cache")}
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", "run", "--no-listen", "--speaker-file",
                             str(tmp_path / "out.wav"), "--db", str(tmp_path / "h.db")], env=env, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while (pid := running_pid()) is None:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.005)
    os.kill(pid, STOP_SIGNAL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, (proc.returncode, out, err)


def test_button_press_starts_then_stops(user_env):
    from voicecoach.button import Toggle
    toggle = Toggle(["--text"])
    assert toggle.press().startswith("started a session")
    assert toggle.press() == "a session is starting; press again to stop it"  # a bouncy double press
    deadline = time.monotonic() + 30
    while running_pid() is None:
        assert toggle.proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    assert toggle.press().startswith("stopped the session")
    assert toggle.proc.wait(timeout=10) == 4


def test_button_says_what_is_missing(user_env):
    try:
        import gpiozero  # noqa: F401
        pytest.skip("gpiozero is installed here")
    except ImportError:
        pass
    r = voicecoach("button", env=user_env)
    assert r.returncode == 1 and "gpiozero is not installed" in r.stderr


def test_install_is_idempotent_and_places_the_launcher(user_env):
    env = dict(user_env, VOICECOACH_NO_RENDER="1", VOICECOACH_EXTRAS="test")
    first = script("install", env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    launcher = Path(user_env["XDG_DATA_HOME"]) / "applications" / "voicecoach.desktop"
    text = launcher.read_text()
    assert f"Exec={REPO}/scripts/stretch\n" in text and f"Exec={REPO}/scripts/stop\n" in text
    assert "@REPO@" not in text
    stat = launcher.stat()
    again = script("install", env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "install: Debian packages: all present" in again.stdout
    assert "install: python packages: up to date" in again.stdout
    assert "install: launcher: up to date" in again.stdout
    assert launcher.stat().st_mtime_ns == stat.st_mtime_ns
    assert f"{REPO}/scripts/stretch" in again.stdout.splitlines()[-2]
    # scripts/test installs too: a second checkout's tests must not point the menu at it
    launcher.write_text(text.replace(str(REPO), "/home/me/voicecoach"))
    tested = script("install", env=dict(env, VOICECOACH_NO_LAUNCHER="1"), timeout=600)
    assert tested.returncode == 0, tested.stderr
    assert "install: launcher: left as it is" in tested.stdout
    assert "Exec=/home/me/voicecoach/scripts/stretch" in launcher.read_text()


def test_install_stops_when_the_package_index_does_not_answer(user_env, tmp_path):
    """pip says "No matching distribution found" for an index it cannot reach as for a package
    with no build for the machine; install must not take the first for the second (and leave the
    speech-embedding head out): it stops, one line, exit 75. A real pip against a refused port."""
    env = {k: v for k, v in user_env.items() if not k.startswith("PIP_")}
    env.update(HOME=str(tmp_path), VOICECOACH_NO_RENDER="1", VOICECOACH_VENV=str(tmp_path / "venv"),
               VOICECOACH_PIP_ATTEMPTS="1", PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_RETRIES="0")
    r = script("install", env=env, timeout=300)
    assert r.returncode == 75, (r.stdout, r.stderr)
    assert "no build for this platform" not in r.stdout
    assert r.stderr.splitlines() == [
        "install: looking for onnxruntime: the package index did not answer (tried 1 times: "
        "[Errno 111] Connection refused). Check the network (or proxy) and run scripts/install again."]
    assert not (tmp_path / "venv" / ".voicecoach-installed").exists()
