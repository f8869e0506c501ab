"""Reminders: the systemd units written (checked by systemd-analyze where it exists), the spoken
line, and silence once today's target is met. No systemd manager needed: with the test's own
runtime dir and no session bus, `systemctl --user` cannot connect, so we only print what to run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from conftest import voicecoach
from voicecoach.audio import read_wav, rms_dbfs
from voicecoach.history import History, Hold

def no_bus(env: dict) -> dict:
    return {k: v for k, v in env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}

def done_rounds(n: int) -> None:
    """Today's history as the coach writes it (default path: the test user's data dir)."""
    history = History()
    sid = history.start_session("Hamstring stretch with a neutral spine", datetime.now())
    for i in range(1, n + 1):
        now = datetime.now()
        assert history.log_round(sid, i, [Hold("left", now, 10.0), Hold("right", now, 10.0)], now)
    history.close()

def test_install_writes_timer_and_service_then_remove(user_env):
    env = no_bus(user_env)
    r = voicecoach("remind", "--install", "--at", "7:30", "--at", "21:05", env=env)
    assert r.returncode == 0, r.stderr
    units = Path(user_env["XDG_CONFIG_HOME"]) / "systemd" / "user"
    timer = (units / "voicecoach-remind.timer").read_text()
    service = (units / "voicecoach-remind.service").read_text()
    assert [line for line in timer.splitlines() if line.startswith("OnCalendar=")] == [
        "OnCalendar=*-*-* 07:30:00", "OnCalendar=*-*-* 21:05:00"]
    assert "Persistent=false" in timer and "WantedBy=timers.target" in timer
    assert "Type=oneshot" in service
    assert f"ExecStart={sys.executable} -m voicecoach remind --now" in service
    assert ("systemctl --user daemon-reload && systemctl --user enable --now voicecoach-remind.timer"
            in r.stdout)
    if shutil.which("systemd-analyze"):
        check = subprocess.run(["systemd-analyze", "verify", str(units / "voicecoach-remind.timer"),
                                str(units / "voicecoach-remind.service")], capture_output=True, text=True)
        assert check.returncode == 0 and check.stderr == "", check.stderr

    r = voicecoach("remind", "--remove", env=env)
    assert r.returncode == 0, r.stderr
    assert not list(units.iterdir())
    assert "removed" in r.stdout
    assert voicecoach("remind", "--remove", env=env).stdout.strip() == "no reminders were installed"

def test_default_times_and_bad_times(user_env):
    env = no_bus(user_env)
    assert voicecoach("remind", "--install", env=env).returncode == 0
    timer = (Path(user_env["XDG_CONFIG_HOME"]) / "systemd/user/voicecoach-remind.timer").read_text()
    assert timer.count("OnCalendar=") == 3 and "18:00:00" in timer
    r = voicecoach("remind", "--install", "--at", "24:00", env=env)
    assert r.returncode == 2 and "'24:00' is not a time of day" in r.stderr

def test_reminder_speaks_progress_until_the_target_is_met(user_env, tmp_path):
    done_rounds(1)
    out = tmp_path / "reminder.wav"
    r = voicecoach("remind", "--now", "--speaker-file", str(out), env=user_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("reminded: Time for your hamstring stretch with a neutral spine. "
                                "You have done 1 of 3 today.")
    samples = read_wav(out)
    assert len(samples) > 16000 * 3 and rms_dbfs(samples) > -40  # a chime and a sentence

    done_rounds(2)  # 3 of 3 now
    out.unlink()
    r = voicecoach("remind", "--now", "--speaker-file", str(out), env=user_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "no reminder: today's target is met (3 of 3 rounds)"
    assert not out.exists()
