"""The hearing: keyword spotters (frames in, detections out) and the echo canceller.

Bottom up: words (the interface every engine shares), features, dtw, embedding, verifier,
sphinx (pocketsphinx engine), learned (the learned engine), enroll (a person's takes), engines
(which spotter hears a session), worker (a spotter in its own process), echo (the canceller).
"""

from __future__ import annotations

from typing import Iterable

ENGINES = ("auto", "learned", "pocketsphinx")
"""`learned` knows only the default vocabulary; `auto` uses it when it covers the routine's words.
Here, not in engines.py, so the command line can offer them without loading an engine."""


class EngineMissing(RuntimeError):
    """The hearing a routine needs is not installed here: pocketsphinx is left out on a 32-bit OS
    (no build of it on PyPI; compiling it is slow on a Pi), where only the learned spotter's
    words can be heard."""


def sphinx_available() -> bool:
    """Whether pocketsphinx 5 or later can be imported (scripts/install leaves it out on 32-bit
    ARM, where the venv also sees Debian's python3-pocketsphinx 0.1, whose API is another)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        major = int(version("pocketsphinx").split(".")[0])
        import pocketsphinx  # noqa: F401
    except (ImportError, OSError, PackageNotFoundError, ValueError):
        return False
    return major >= 5


def sphinx_missing(words: Iterable[str] = ()) -> EngineMissing:
    """The one message for every path that needs pocketsphinx where it is not installed: for
    `words` the learned spotter does not know, or (none given) for `--engine pocketsphinx`."""
    need = ", ".join(dict.fromkeys(words))
    return EngineMissing(
        f"{'the words ' + need + ' need' if need else '--engine pocketsphinx needs'} pocketsphinx, "
        "which is not installed here (scripts/install leaves it out on a 32-bit OS: PyPI has no build "
        "of it for 32-bit ARM); the default words are heard without it. To add it (pip compiles it "
        "there, which takes a while): VOICECOACH_EXTRAS=sphinx scripts/install")
