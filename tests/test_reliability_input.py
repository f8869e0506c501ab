"""Hostile routine files through the real command line: `voicecoach check` and `voicecoach run`
must end each one with exit 2 and exactly one clear stderr line (file:line:column where the
problem has a place), never a traceback, and within a bounded memory and CPU budget enforced by
the kernel on the child (RLIMIT_AS, RLIMIT_CPU), so a blow-up would kill it and fail the test.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO
from test_routine_fuzz import damage, edits, routines

BUILTIN = resources.files("voicecoach").joinpath("data/hamstring.yaml").read_bytes()
MEMORY_LIMIT = 1536 * 2**20
"""Address space for the child: the CLI needs ~0.5 GiB of mappings; an alias bomb needs far more."""
CPU_SECONDS = 20
MAX_RSS_KIB = 400 * 1024
"""Peak resident memory allowed to a child that only has to refuse a file."""
WALL_SECONDS = 30


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    max_rss_kib: int
    seconds: float


def _limits() -> None:
    """In the child, before exec: the kernel enforces the memory and time bounds."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))


def bounded(*args: str, env: Dict[str, str]) -> Outcome:
    """Run the CLI under resource limits; report its peak RSS from the kernel (wait4)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_limits)
    try:
        out, err = proc.communicate(timeout=WALL_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"voicecoach {' '.join(args)} took more than {WALL_SECONDS} s")
    # communicate() reaped the child through waitpid; its rusage went to RUSAGE_CHILDREN, so
    # measure peak memory with a second, identical run under wait4 only when it matters.
    return Outcome(proc.returncode, out, err, 0, time.monotonic() - t0)


def peak_rss_kib(*args: str, env: Dict[str, str]) -> int:
    """Peak resident memory of one CLI run, from wait4's rusage for that child alone."""
    proc = subprocess.Popen([sys.executable, "-m", "voicecoach", *args], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=_limits)
    deadline = time.monotonic() + WALL_SECONDS
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_maxrss
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"voicecoach {' '.join(args)} took more than {WALL_SECONDS} s")
        time.sleep(0.02)


def assert_refused(result: Outcome, path: Path, place: bool) -> str:
    """Exit 2, one stderr line naming the file (with line:column when `place`), no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    line = lines[0].removeprefix("voicecoach: ")
    assert line.startswith(f"{path}:" if place else str(path)), line
    if place:
        assert re.match(re.escape(str(path)) + r":\d+:\d+: \S", line), line
    return line


# -- the catalogue of hostile files -------------------------------------------------------

GOOD = "name: Test\nsetup: [Stand tall.]\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}]\n" for i in range(9)) + GOOD


def _write(content: bytes) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        p = d / "routine.yaml"
        p.write_bytes(content)
        return p
    return make


def _big(d: Path) -> Path:
    """50 MB of real, valid-looking YAML content (not a sparse file)."""
    p = d / "big.yaml"
    with open(p, "wb") as f:
        f.write(GOOD.encode())
        chunk = b"# padding padding padding padding padding padding padding padding\n" * 16384
        while f.tell() < 50 * 2**20:
            f.write(chunk)
    return p


def _directory(d: Path) -> Path:
    (d / "routines.yaml").mkdir()
    return d / "routines.yaml"


def _fifo(d: Path) -> Path:
    os.mkfifo(d / "pipe.yaml")
    return d / "pipe.yaml"


# (name, file maker, has a line:column)
HOSTILE: List[tuple] = [
    ("broken-yaml", _write(b"name: x\nsetup: [Stand tall.\nsides: [left]\n"), True),
    ("bad-indent", _write(b"name: x\n  setup: [a]\n"), True),
    ("tab-indent", _write(b"name: x\nsetup:\n\t- a\n"), True),
    ("wrong-type-setup", _write((GOOD.replace("[Stand tall.]", "5")).encode()), True),
    ("wrong-type-hold", _write((GOOD + "hold_seconds: ten\n").encode()), True),
    ("wrong-type-bool", _write((GOOD + "rounds: yes\n").encode()), True),
    ("out-of-range-hold", _write((GOOD + "hold_seconds: 100000\n").encode()), True),
    ("negative-rounds", _write((GOOD + "rounds: -1\n").encode()), True),
    ("zero-hold", _write((GOOD + "hold_seconds: 0\n").encode()), True),
    ("nan-rest", _write((GOOD + "rest_between_sides: .nan\n").encode()), True),
    ("inf-rest", _write((GOOD + "rest_between_rounds: .inf\n").encode()), True),
    ("huge-int", _write((GOOD + "rounds: " + "9" * 5000 + "\n").encode()), True),
    ("volume-too-loud", _write((GOOD + "voice: {volume: 7}\n").encode()), True),
    ("unknown-key", _write((GOOD + "holdseconds: 10\n").encode()), True),
    ("unknown-cue", _write((GOOD + "cues: {hodl: Hold.}\n").encode()), True),
    ("empty-setup-cue", _write(b"name: x\nsetup: ['']\n"), True),
    ("blank-hold-cue", _write((GOOD + "cues: {hold: '   '}\n").encode()), True),
    ("empty-setup-list", _write(b"name: x\nsetup: []\n"), True),
    ("no-side-placeholder", _write((GOOD + "cues: {position: Now stretch.}\n").encode()), True),
    ("duplicate-key", _write((GOOD + "name: Again\n").encode()), True),
    ("duplicate-side", _write((GOOD + "sides: [left, left]\n").encode()), True),
    ("empty-listen", _write((GOOD + "listen: {safety: []}\n").encode()), True),
    ("not-a-mapping", _write(b"- name: x\n- setup: [a]\n"), True),
    ("just-a-scalar", _write(b"hello\n"), True),
    ("missing-name", _write(b"setup: [a]\n"), True),
    ("two-documents", _write((GOOD + "---\n" + GOOD).encode()), True),
    ("alias-bomb", _write(BOMB.encode()), True),
    ("deep-nesting", _write(("name: x\nsetup: " + "[" * 5000 + "]" * 5000 + "\n").encode()), True),
    ("python-object-tag", _write(
        (GOOD + "rounds: !!python/object/apply:os.system ['touch PWNED']\n").encode()), True),
    ("python-name-tag", _write((GOOD + "name2: !!python/name:os.system\n").encode()), True),
    ("custom-tag", _write((GOOD.replace("Test", "!secret Test")).encode()), True),
    ("non-utf8", _write(b"name: caf\xe9\nsetup: [a]\n"), True),
    ("utf16", _write(GOOD.encode("utf-16")), False),
    ("nul-bytes", _write(b"\x00" * 64), False),
    ("control-char", _write(b"name: a\x07b\nsetup: [a]\n"), True),
    ("empty-file", _write(b""), False),
    ("only-comment", _write(b"# nothing here\n"), False),
    ("50MB", _big, False),
    ("directory", _directory, False),
    ("missing-file", lambda d: d / "no-such-routine.yaml", False),
    ("fifo", _fifo, False),
]


@pytest.fixture
def cli_env(user_env: Dict[str, str]) -> Dict[str, str]:
    return user_env


@pytest.mark.parametrize("name, make, place", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_file_is_refused_by_check_and_run(name: str, make: Callable[[Path], Path],
                                                  place: bool, tmp_path: Path,
                                                  cli_env: Dict[str, str]) -> None:
    work = tmp_path / "w"
    work.mkdir()
    path = make(work)
    check = bounded("check", str(path), env=cli_env)
    line = assert_refused(check, path, place and name not in ("empty-file", "only-comment"))
    db = tmp_path / "h.db"
    run = bounded("run", str(path), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                  "--db", str(db), env=cli_env)
    assert assert_refused(run, path, place) == line        # the same message, whichever command
    assert not db.exists()                                 # refused before anything started
    assert not (REPO / "PWNED").exists() and not (work / "PWNED").exists()
    assert check.seconds < 15 and run.seconds < 15


@pytest.mark.parametrize("name", ["alias-bomb", "50MB", "deep-nesting", "huge-int"])
def test_expensive_inputs_stay_small(name: str, tmp_path: Path, cli_env: Dict[str, str]) -> None:
    """Peak memory of refusing the costliest files is that of refusing a trivial one."""
    make = dict((h[0], h[1]) for h in HOSTILE)[name]
    baseline = peak_rss_kib("check", str(_write(b"name: x\n")(tmp_path)), env=cli_env)
    work = tmp_path / "w"
    work.mkdir()
    rss = peak_rss_kib("check", str(make(work)), env=cli_env)
    assert rss < MAX_RSS_KIB and rss < baseline + 30 * 1024, (rss, baseline)


# -- property-based: generated routines and mutated files at the command line -------------

CLI_FUZZ = settings(max_examples=25, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
_n = iter(range(10**9))


def assert_clean(result: Outcome, path: Path) -> None:
    """Whatever the file: 0 (usable) or 2 with one line naming it; never a crash."""
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in (0, 2), (result.returncode, result.stderr[-2000:])
    if result.returncode == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].removeprefix("voicecoach: ").startswith(str(path)), lines[0]


@CLI_FUZZ
@given(doc=routines(), changes=st.none() | edits)
def test_generated_and_mutated_routines_at_the_command_line(doc: dict, changes: Optional[list],
                                                           tmp_path: Path,
                                                           cli_env: Dict[str, str]) -> None:
    data = yaml.safe_dump(doc, allow_unicode=True).encode()
    if changes is not None:
        data = damage(data, changes)
    path = tmp_path / f"gen-{next(_n)}.yaml"
    path.write_bytes(data)
    assert_clean(bounded("check", str(path), env=cli_env), path)


@CLI_FUZZ
@given(changes=edits)
def test_mutated_builtin_routine_run_and_check(changes: list, tmp_path: Path,
                                               cli_env: Dict[str, str]) -> None:
    """`run` on a damaged copy of the built-in routine: it runs (0) or is refused (2), cleanly."""
    path = tmp_path / f"damaged-{next(_n)}.yaml"
    path.write_bytes(damage(BUILTIN, changes))
    checked = bounded("check", str(path), env=cli_env)
    assert_clean(checked, path)
    ran = bounded("run", str(path), "--no-listen", "--speaker-file", str(tmp_path / "o.wav"),
                  "--db", str(tmp_path / "h.db"), env=cli_env)
    assert "Traceback" not in ran.stderr, ran.stderr[-2000:]
    if checked.returncode == 2 and "recognizer does not know" not in checked.stderr:
        assert ran.returncode == 2 and ran.stderr.splitlines() == [
            "voicecoach: " + checked.stderr.strip()]
    else:
        assert ran.returncode == 0, ran.stderr[-2000:]
