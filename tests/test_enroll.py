"""Voice enrolment: real speech (espeak-ng renderings at several rates and pitches), the DTW
against a plain double loop, the private file, and `voicecoach enroll` end to end."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest

from voicecoach import cli, devices
from voicecoach.audio import FRAME, RATE, read_wav, write_wav
from voicecoach.hearing.dtw import PENALTY, STRETCH, subsequence_dtw
from voicecoach.hearing.enroll import Enrollment, EnrollmentError, enroll, load_enrollment, record_takes
from voicecoach.hearing.features import BANDS, FLOOR, logmel
from voicecoach.paths import enrollment_file

TAKES = [(140, 40), (150, 55), (160, 70)]       # (words per minute, pitch) of the three takes
OTHER = (145, 50)                               # a fourth rendering, unlike every take

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """WAVs by name: pain_140_40 ..., and the other words at the fourth rendering's settings."""
    out = tmp_path_factory.mktemp("speech")
    jobs = [("pain", r, p) for r, p in TAKES + [OTHER]] + [(w, *OTHER) for w in ("paint", "plain", "seven",
                                                                             "stretch", "numb")]
    jobs += [("numb", r, p) for r, p in TAKES]
    files = {}
    for text, rate, pitch in jobs:
        path = out / f"{text}_{rate}_{pitch}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(rate), "-p", str(pitch), "-w", str(path), text],
                       check=True, capture_output=True)
        files[path.stem] = path
    return files


def takes_of(speech: Dict[str, Path], word: str = "pain") -> List[Path]:
    return [speech[f"{word}_{r}_{p}"] for r, p in TAKES]


@pytest.fixture(scope="module")
def pain(speech: Dict[str, Path]) -> Enrollment:
    return enroll({"pain": [read_wav(f) for f in takes_of(speech)]})


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


def live_windows(samples: np.ndarray) -> np.ndarray:
    """The windows LearnedSpotter evaluates: the last 100 frames, every 3rd frame from the 50th."""
    feats = logmel(samples)
    padded = np.concatenate([np.full((100, BANDS), np.log(FLOOR)), feats])
    return np.stack([padded[f:f + 100] for f in range(51, len(feats) + 1, 3)])


def test_a_fourth_pain_in_a_longer_clip_matches_as_the_word_ends(speech, pain: Enrollment) -> None:
    word = read_wav(speech["pain_145_50"])
    before = np.concatenate([silence(0.4), read_wav(speech["stretch_145_50"]), silence(0.3)])
    clip = np.concatenate([before, word, silence(0.6)])
    windows = live_windows(clip)
    hits = [i for i, w in enumerate(windows) if pain.matches("pain", w)]
    assert hits, min(pain.distances("pain", windows))
    ends = (51 + 3 * np.array(hits)) * FRAME / RATE               # when each matching window ends
    word_end = (len(before) + np.flatnonzero(np.abs(word) > 300)[-1]) / RATE   # espeak trails silence
    assert all(word_end + 0.05 < t < word_end + 0.3 for t in ends), (ends, word_end)


@pytest.mark.parametrize("word", ["paint", "plain", "seven", "stretch", "numb"])
def test_other_words_do_not_match(speech, pain: Enrollment, word: str) -> None:
    clip = np.concatenate([silence(0.5), read_wav(speech[f"{word}_145_50"]), silence(0.5)])
    distances = pain.distances("pain", live_windows(clip))
    assert distances.min() > pain.thresholds["pain"], (distances.min(), pain.thresholds)


def test_distance_is_one_window_of_distances_and_unknown_words_are_infinitely_far(speech, pain) -> None:
    clip = np.concatenate([silence(0.5), read_wav(speech["pain_145_50"]), silence(0.5)])
    windows = live_windows(clip)
    assert [pain.distance("pain", w) for w in windows] == pytest.approx(list(pain.distances("pain", windows)))
    assert pain.distance("numb", windows[-1]) == np.inf and not pain.matches("numb", windows[-1])


def reference_dtw(cost: np.ndarray, m: int, first: int, last: int):
    """The same DTW written as the textbook double loop: (distance, start, end)."""
    n = cost.shape[1]
    d = np.full((m, n), np.inf)
    start = np.zeros((m, n), int)
    for i in range(m):
        for j in range(n):
            if i == 0:
                d[i, j], start[i, j] = cost[0, j], j
                continue
            options = [(d[i - 1, j] + cost[i, j] + PENALTY, start[i - 1, j])]
            if j:
                options += [(d[i - 1, j - 1] + 2 * cost[i, j], start[i - 1, j - 1]),
                            (d[i, j - 1] + cost[i, j] + PENALTY, start[i, j - 1])]
            d[i, j], start[i, j] = min(options, key=lambda o: o[0])
    best = (np.inf, 0, 0)
    for j in range(first, last + 1):
        span = j - start[m - 1, j] + 1
        if m / STRETCH <= span <= m * STRETCH and d[m - 1, j] / (m + span - 1) < best[0]:
            best = (d[m - 1, j] / (m + span - 1), start[m - 1, j], j)
    return best


def test_the_vectorised_rows_give_the_double_loop_result() -> None:
    rng = np.random.default_rng(7)
    lengths = np.array([12, 20, 16])
    cost = rng.uniform(0, 60, (4, 3, 20, 50)).astype(np.float32)
    for k, m in enumerate(lengths):
        cost[:, k, m:] = 0                                          # padding rows are ignored
    cost[0, 1, :, 30:50] *= 0.1                                     # a good match somewhere
    first = np.array([38, 40, 44, 38])
    score, start, end = subsequence_dtw(cost, lengths, first, 44)
    for b in range(4):
        for k, m in enumerate(lengths):
            want = reference_dtw(cost[b, k].astype(np.float64), m, first[b], 44)
            if want[0] == np.inf:
                assert score[b, k] == np.inf
            else:
                assert (score[b, k], start[b, k], end[b, k]) == (pytest.approx(want[0], rel=1e-4), *want[1:])


def test_save_and_load_give_the_same_enrollment(tmp_path: Path, speech, pain: Enrollment) -> None:
    pain.save(tmp_path / "e.npz")
    again = Enrollment.load(tmp_path / "e.npz")
    assert again.thresholds == pain.thresholds
    assert all(np.array_equal(a, b) for a, b in zip(again.templates["pain"], pain.templates["pain"]))
    assert all(t.dtype == np.float32 and t.shape[1] == BANDS for t in again.templates["pain"])
    window = live_windows(np.concatenate([silence(0.5), read_wav(speech["pain_145_50"]), silence(0.5)]))
    assert np.array_equal(again.distances("pain", window), pain.distances("pain", window))


def test_the_file_is_owner_only_beside_the_history_whatever_the_umask(tmp_path: Path, pain, monkeypatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = enrollment_file()
    assert path == tmp_path / "data" / "voicecoach" / "enrollment.npz"
    old = os.umask(0o002)
    try:
        pain.save(path)
        pain.save(path)                                             # replacing keeps it private
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["enrollment.npz"]     # no temporary left over


def test_no_file_is_none_and_a_damaged_one_says_so(tmp_path: Path, pain) -> None:
    assert load_enrollment(tmp_path / "none.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(EnrollmentError, match="cannot read the voice enrolment"):
        load_enrollment(tmp_path / "bad.npz")
    pain.save(tmp_path / "cut.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:300])
    with pytest.raises(EnrollmentError):
        load_enrollment(tmp_path / "cut.npz")


def test_takes_without_speech_or_too_few_are_refused(speech) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        enroll({"pain": [read_wav(takes_of(speech)[0])]})
    with pytest.raises(ValueError, match="take 2: no speech"):
        enroll({"pain": [read_wav(takes_of(speech)[0]), silence(1.0), read_wav(takes_of(speech)[1])]})


# -- the command ---------------------------------------------------------------------------------


def take_args(files: List[Path], word: str = "pain") -> List[str]:
    return [a for f in files for a in ("--take", f"{word}={f}")]


def test_enroll_from_files_writes_the_file_and_forget_removes_it(user_env, speech, capsys) -> None:
    assert cli.main(["enroll", *take_args(takes_of(speech))]) == 0
    path = enrollment_file()
    assert str(path) in capsys.readouterr().out
    saved = load_enrollment()
    assert saved is not None and list(saved.templates) == ["pain"] and len(saved.templates["pain"]) == 3
    assert cli.main(["enroll", *take_args(takes_of(speech, "numb"), "numb")]) == 0
    assert "kept pain" in capsys.readouterr().out
    assert sorted(load_enrollment().templates) == ["numb", "pain"]    # type: ignore[union-attr]
    assert cli.main(["enroll", "--forget"]) == 0
    assert not path.exists() and "removed" in capsys.readouterr().out
    assert cli.main(["enroll", "--forget"]) == 0
    assert "no voice enrolment" in capsys.readouterr().out


def test_enroll_writes_where_out_says(tmp_path: Path, user_env, speech) -> None:
    assert cli.main(["enroll", "--word", "pain", "--takes", "2", *take_args(takes_of(speech)[:2]),
                     "--out", str(tmp_path / "mine.npz")]) == 0
    assert load_enrollment(tmp_path / "mine.npz") is not None and not enrollment_file().exists()


def bad_inputs(speech, tmp_path: Path) -> Dict[str, List[str]]:
    silent = tmp_path / "silent.wav"
    write_wav(silent, silence(1.0))
    three = takes_of(speech)
    return {
        "missing file": take_args(three[:2] + [tmp_path / "nope.wav"]),
        "unknown phrase": take_args(three, "ouch"),
        "too few takes": take_args(three[:2]),
        "takes below two": ["--takes", "1", *take_args(three)],
        "no phrase": ["--take", str(three[0])],
        "take for a word not named": ["--word", "pain", *take_args(three), *take_args(three, "numb")],
        "silent take": take_args(three[:2] + [silent]),
    }


@pytest.mark.parametrize("case", ["missing file", "unknown phrase", "too few takes", "takes below two",
                                  "no phrase", "take for a word not named", "silent take"])
def test_bad_input_is_one_message_and_exit_2(case: str, user_env, speech, tmp_path: Path, capsys) -> None:
    assert cli.main(["enroll", *bad_inputs(speech, tmp_path)[case]]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("voicecoach: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not enrollment_file().exists()


def test_a_damaged_file_is_replaced_by_a_new_enrolment(user_env, speech) -> None:
    path = enrollment_file()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"junk")
    assert cli.main(["enroll", *take_args(takes_of(speech))]) == 0
    assert list(load_enrollment().templates) == ["pain"]            # type: ignore[union-attr]


# -- live: a microphone that plays a recording ---------------------------------------------------


class RecordedMic:
    """Stands in for PyAudioMicrophone: room noise and what `audio` holds, faster than real time."""

    def __init__(self, audio: np.ndarray, chunk: int = 25) -> None:
        noise = np.random.default_rng(1).normal(0, 30, len(audio))
        self.audio = np.clip(audio + noise, -32768, 32767).astype(np.int16)
        self.chunk, self.next = chunk, 0

    def frames(self, until: float):
        out = []
        for _ in range(self.chunk):
            i = self.next * FRAME
            frame = self.audio[i:i + FRAME] if i + FRAME <= len(self.audio) else np.zeros(FRAME, np.int16) + 3
            out.append((self.next * FRAME / RATE, frame))
            self.next += 1
        return out

    def wait_ready(self) -> bool:
        return True

    def close(self) -> None:
        pass


def play_to_the_mic(monkeypatch, audio: np.ndarray) -> None:
    class PyAudio:
        def terminate(self) -> None:
            pass
    monkeypatch.setattr(devices, "open_pyaudio", lambda: PyAudio())
    monkeypatch.setattr(devices, "PyAudioMicrophone", lambda pa, name: RecordedMic(audio))


def test_live_enrolment_prompts_and_records_each_take(user_env, speech, monkeypatch, capsys) -> None:
    parts = [silence(1.0)]
    for f in takes_of(speech):
        parts += [read_wav(f), silence(1.0)]
    play_to_the_mic(monkeypatch, np.concatenate(parts))
    assert cli.main(["enroll", "--word", "pain"]) == 0
    out = capsys.readouterr().out
    assert all(f"Say 'pain' (take {k} of 3)" in out for k in (1, 2, 3)) and "heard nothing" not in out
    saved = load_enrollment()
    assert saved is not None and len(saved.templates["pain"]) == 3
    clip = np.concatenate([silence(0.5), read_wav(speech["pain_145_50"]), silence(0.5)])
    assert any(saved.matches("pain", w) for w in live_windows(clip))


def test_a_take_with_no_speech_is_asked_again_then_fails(user_env, monkeypatch, capsys) -> None:
    play_to_the_mic(monkeypatch, silence(1.0))
    assert cli.main(["enroll", "--word", "pain"]) == cli.EXIT_FAILURE
    captured = capsys.readouterr()
    assert captured.out.count("heard nothing") == 3 and "take 1 of 3) again" in captured.out
    assert "heard nothing for 'pain'" in captured.err and not enrollment_file().exists()


def test_record_takes_keeps_the_word_and_a_little_air(speech) -> None:
    word = read_wav(speech["pain_145_50"])
    takes = record_takes(RecordedMic(np.concatenate([silence(1.0), word, silence(1.0)])), ["pain"], 1,
                         open(os.devnull, "w"))
    got = len(takes["pain"][0]) / RATE
    assert len(word) / RATE < got < len(word) / RATE + 0.9


def test_the_learned_spotter_takes_the_enrolled_voice_as_confirmation(speech, pain) -> None:
    from voicecoach.hearing.learned import LearnedSpotter
    from voicecoach.hearing.words import Keyword, spot_file
    strict = [Keyword("pain", "safety", 0.0), Keyword("stop", "stop")]   # threshold 0.99: unreachable
    said, other = speech["pain_145_50"], speech["paint_145_50"]
    assert list(spot_file(said, LearnedSpotter(strict))) == []
    heard = list(spot_file(said, LearnedSpotter(strict, enrollment=pain)))
    assert [(d.word, d.action) for d in heard] == [("pain", "safety")]
    assert list(spot_file(other, LearnedSpotter(strict, enrollment=pain))) == []


def test_make_spotter_uses_the_enrolment_on_file(speech, pain, monkeypatch, tmp_path) -> None:
    from voicecoach.hearing.engines import make_spotter
    from voicecoach.hearing.words import default_keywords
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert make_spotter(default_keywords()).enrollment is None
    pain.save(enrollment_file())
    assert make_spotter(default_keywords()).enrollment.templates.keys() == {"pain"}
