"""The user's settings file: devices, voice, routine and history set once instead of per command.

`$XDG_CONFIG_HOME/voicecoach/config.yaml` (~/.config when unset). A shortcut cannot take
options, so the devices and routine a speaker needs live here. Precedence: command line >
this file > the routine's voice block > built-in defaults. The file is read with the same
strictness as routines: an unknown key or a wrong value is an error naming file:line:column
(exit 2), never a setting silently ignored.

    mic: usb                # device index or name, as `voicecoach devices` lists them
    speaker: alsa_output.usb-Generic_USB_Audio-00.analog-stereo
    voice: gmw/en-us
    rate: 150               # words per minute
    volume: 0.9             # 0 to 1
    routine: ~/stretches/morning.yaml
    db: ~/stretch-history.sqlite3
    listen: true            # false: voice stop off (use a stop shortcut)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypeVar

from yaml.nodes import MappingNode

from voicecoach.paths import config_file
from voicecoach.routine import RoutineError
from voicecoach.yamlcheck import Invalid, Nodes, at, compose, describe, read_text

T = TypeVar("T")
KEYS = ("mic", "speaker", "voice", "rate", "volume", "routine", "db", "listen")


class ConfigError(RoutineError):
    """A config file that cannot be used: reported "PATH:LINE:COL: message", exit 2 like a routine."""


@dataclass(frozen=True)
class Config:
    """Settings from the file; None means "not set here", so the next source in line decides."""

    mic: Optional[str] = None
    speaker: Optional[str] = None
    voice: Optional[str] = None
    rate: Optional[int] = None
    volume: Optional[float] = None
    routine: Optional[Path] = None
    db: Optional[Path] = None
    listen: Optional[bool] = None


def load_config(path: Optional[Path] = None) -> Config:
    """The settings file, or all-unset when there is none; raises ConfigError when it is wrong."""
    path = path or config_file()
    if not path.exists():
        return Config()
    try:
        return _build(read_text(path), path)
    except Invalid as e:
        raise ConfigError(e.message, str(path), e.line, e.column) from None


def _build(text: str, path: Path) -> Config:
    root = compose(text)
    if root is None:
        return Config()
    if not isinstance(root, MappingNode):
        raise at(root, f"the config must be a mapping of keys ({', '.join(KEYS)}), got {describe(root)}")
    n = Nodes()
    top = {k: v for k, (_, v) in n.mapping(root, "the config", KEYS).items()}

    def device(key: str) -> Optional[str]:
        if key not in top:
            return None
        value = n.scalar(top[key], key)
        if type(value) is int and value >= 0:
            return str(value)
        return n.text(top[key], f"{key} (a device index or name)")

    def where(key: str) -> Optional[Path]:
        """A file path; relative ones are relative to the config file, ~ is the home folder."""
        if key not in top:
            return None
        text = n.text(top[key], f"{key} (a file path)")
        return path.parent / Path(text).expanduser()  # type: ignore[arg-type]

    listen = None
    if "listen" in top:
        listen = n.scalar(top["listen"], "listen")
        if type(listen) is not bool:
            raise at(top["listen"], f"listen must be true or false, got {describe(top['listen'])}")
    return Config(
        mic=device("mic"),
        speaker=device("speaker"),
        voice=n.text(top["voice"], "voice") if "voice" in top else None,
        rate=n.whole(top["rate"], "rate", 80, 450, " of words per minute") if "rate" in top else None,
        volume=n.number(top["volume"], "volume", 0, 1) if "volume" in top else None,
        routine=where("routine"),
        db=where("db"),
        listen=listen,
    )


def pick(given: Optional[T], configured: Optional[T]) -> Optional[T]:
    """The command line's value when given, else the config file's (None: the defaults decide)."""
    return given if given is not None else configured
