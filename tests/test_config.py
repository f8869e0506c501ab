"""The user's config file: strict like routines (file:line errors, exit 2) and the documented
precedence command line > config file > defaults, observed through real runs and real SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import voicecoach
from voicecoach.config import Config, ConfigError, load_config
from voicecoach.paths import config_file


def write_config(env: dict, text: str) -> Path:
    path = Path(env["XDG_CONFIG_HOME"]) / "voicecoach" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def rounds(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM rounds").fetchone()[0]


def test_no_file_sets_nothing(user_env):
    assert config_file() == Path(user_env["XDG_CONFIG_HOME"]) / "voicecoach" / "config.yaml"
    assert load_config() == Config()


def test_values_are_typed_and_paths_resolved(user_env):
    path = write_config(user_env, "mic: 3\nspeaker: usb\nvoice: gmw/en-us\nrate: 140\nvolume: 0.5\n"
                                  "routine: mine.yaml\ndb: /var/tmp/h.sqlite3\nlisten: no\n")
    assert load_config() == Config(mic="3", speaker="usb", voice="gmw/en-us", rate=140, volume=0.5,
                                   routine=path.parent / "mine.yaml", db=Path("/var/tmp/h.sqlite3"),
                                   listen=False)


@pytest.mark.parametrize("text, where, words", [
    ("mic: usb\nspeakr: hdmi\n", ":2:1:", "did you mean 'speaker'"),
    ("rate: 150\nvolume: 3\n", ":2:9:", "volume must be a number from 0 to 1"),
    ("listen: sometimes\n", ":1:9:", "listen must be true or false"),
    ("rate: 150\nrate: 160\n", ":2:1:", "duplicate key 'rate'"),
    ("- mic\n", ":1:1:", "must be a mapping"),
])
def test_a_wrong_file_is_an_error_with_its_line(user_env, text, where, words):
    path = write_config(user_env, text)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert str(err.value).startswith(f"{path}{where}") and words in str(err.value)


def test_cli_refuses_to_run_with_a_wrong_config(user_env):
    path = write_config(user_env, "mic: usb\nroutin: x.yaml\n")
    r = voicecoach("run", "--text", env=user_env, input="")
    assert r.returncode == 2
    assert f"{path}:2:1: unknown key 'routin'" in r.stderr and "did you mean 'routine'" in r.stderr


def test_precedence_command_line_over_config_over_defaults(user_env, tmp_path):
    timeline = tmp_path / "t.jsonl"
    run = ("run", "--speaker-file", str(tmp_path / "out.wav"), "--timeline", str(timeline))
    deaf = "Voice stop is off"

    # defaults: history in the data dir, listening on
    data_db = Path(user_env["XDG_DATA_HOME"]) / "voicecoach" / "history.sqlite3"
    r = voicecoach(*run, env=user_env)
    assert r.returncode == 0, r.stderr
    assert rounds(data_db) == 1 and deaf not in timeline.read_text()

    # config: its db (relative to the config file) is used and listening is off
    write_config(user_env, "db: from-config.sqlite3\nlisten: false\n")
    config_db = Path(user_env["XDG_CONFIG_HOME"]) / "voicecoach" / "from-config.sqlite3"
    r = voicecoach(*run, env=user_env)
    assert r.returncode == 0, r.stderr
    assert rounds(config_db) == 1 and rounds(data_db) == 1 and deaf in timeline.read_text()

    # command line over config: --db elsewhere, --listen back on
    cli_db = tmp_path / "cli.sqlite3"
    r = voicecoach(*run, "--db", str(cli_db), "--listen", env=user_env)
    assert r.returncode == 0, r.stderr
    assert rounds(cli_db) == 1 and rounds(config_db) == 1 and deaf not in timeline.read_text()
