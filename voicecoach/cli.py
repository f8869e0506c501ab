"""The `voicecoach` command: a thin layer of argument parsing over the library.

Exit codes are a contract for shortcut scripts: 0 completed, 1 any other failure, 2 bad usage
or routine, 3 stopped for safety, 4 stopped by the person, 5 a session is already running,
6 the hearing the routine needs is not installed here (pocketsphinx, left out on a 32-bit OS).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from voicecoach import __version__, load_routine, read_history
from voicecoach.hearing import ENGINES

if TYPE_CHECKING:
    from voicecoach.launch import Wrap
    from voicecoach.settings import PersonSettings


EXIT_FAILURE, EXIT_USAGE, EXIT_BUSY, EXIT_MISSING = 1, 2, 5, 6

EPILOG = """exit codes: 0 completed, 1 failure, 2 bad usage or routine, 3 stopped for safety,
4 stopped by the person (stop word, `voicecoach stop`, Ctrl-C), 5 a session is already running,
6 the hearing the routine needs is not installed here (pocketsphinx on a 32-bit OS)"""


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"voicecoach: {message}", file=sys.stderr)
    return code


def _person(args: argparse.Namespace, cfg, **more) -> "PersonSettings":
    """The person's settings: the command line's over the config file's (None: defaults decide)."""
    from voicecoach.config import pick
    from voicecoach.settings import PersonSettings
    return PersonSettings(voice=pick(args.voice, cfg.voice), rate=pick(args.rate, cfg.rate),
                          volume=pick(args.volume, cfg.volume), **more)


def cmd_run(args: argparse.Namespace) -> int:
    from voicecoach.config import load_config, pick
    from voicecoach.launch import run
    from voicecoach.settings import DeviceSettings, OutputSettings
    cfg = load_config()  # command line > config file > defaults
    person = _person(args, cfg, routine=pick(args.routine, cfg.routine),
                     listen=pick(args.listen, cfg.listen) is not False, engine=args.engine)
    devices = DeviceSettings(mic=pick(args.mic, cfg.mic), speaker=pick(args.speaker, cfg.speaker),
                             mic_file=args.mic_file, speaker_file=args.speaker_file, echo_db=args.echo_db,
                             text=args.text)
    result = run(person, devices, OutputSettings(db=pick(args.db, cfg.db), timeline=args.timeline),
                 wrap=args.wrap)
    line = f"{result.outcome.value}: {result.rounds} round(s) done"
    if result.word:
        line += f"; stopped on {result.word!r} at {result.where}"
    if result.reason:
        line += f"; {result.reason}"
    print(line, file=sys.stderr if args.text else sys.stdout)
    if result.unsaved:
        print(f"voicecoach: warning: {result.unsaved} history record(s) of this session could not "
              "be saved; its rounds are not in the history", file=sys.stderr)
    return result.exit_code


def cmd_check(args: argparse.Namespace) -> int:
    from voicecoach.hearing import sphinx_available, sphinx_missing
    from voicecoach.hearing.learned import Model, unknown as unlearned
    from voicecoach.routine import RoutineError, vocabulary
    bad = missing = 0
    sphinx = sphinx_available()
    model = None if sphinx else Model.load()
    for path in args.files:
        try:
            routine = load_routine(path)
        except RoutineError as exc:
            print(exc, file=sys.stderr)
            bad += 1
            continue
        phrases = [k.phrase for k in vocabulary(routine)]
        if sphinx:
            from voicecoach.hearing.sphinx import unknown_words
            unknown = unknown_words(phrases)
        else:   # 32-bit ARM: only the learned spotter's words can be heard (and they are all known)
            other = unlearned(phrases, model)
            if other:
                print(f"{path}: listen: {sphinx_missing(other)}", file=sys.stderr)
                missing += 1
                continue
            unknown = []
        if unknown:
            print(f"{path}: listen: the recognizer does not know {', '.join(unknown)}; "
                  "choose common English words", file=sys.stderr)
            bad += 1
        else:
            print(f"{path}: ok ({routine.name})")
    return EXIT_USAGE if bad else EXIT_MISSING if missing else 0


def cmd_history(args: argparse.Namespace) -> int:
    history = read_history(args.db)
    try:
        if args.csv:
            history.export_csv(sys.stdout)
        elif args.json:
            history.export_json(sys.stdout)
        else:
            target = args.target or load_routine().daily_target
            days = history.days(args.days)
            today = days[-1][1] if days else 0
            print(f"today: {today} of {target} rounds" + ("  (done for today)" if today >= target else ""))
            for day, n in reversed(days[:-1]):
                print(f"{day.isoformat()}  {n:2d} {'#' * n}{'  target met' if n >= target else ''}")
    finally:
        history.close()
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from voicecoach.config import load_config, pick
    from voicecoach.launch import render
    cfg = load_config()
    routine = load_routine(pick(args.routine, cfg.routine))
    clips = render(routine, _person(args, cfg).voice_for(routine))
    print(f"{len(clips)} phrases ready ({sum(c.duration for c in clips.values()):.0f} s of speech)")
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    from voicecoach.speech import list_voices
    for vid, name, langs in list_voices():
        print(f"{vid}\t{name}\t{','.join(langs)}")
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from voicecoach.config import load_config
    from voicecoach.hearing.engines import make_spotter
    from voicecoach.hearing.words import spot_file
    from voicecoach.routine import vocabulary
    cfg = load_config()
    try:
        spotter = make_spotter(vocabulary(load_routine(args.routine or cfg.routine)), args.engine)
    except ValueError as exc:   # a routine's words the chosen engine cannot hear
        return _fail(str(exc), EXIT_USAGE)
    for path in args.file or []:
        spotter.reset()
        try:
            for d in spot_file(path, spotter):
                print(json.dumps({"file": path, "word": d.word, "action": d.action, "t": round(d.t, 3)}),
                      flush=True)
        except OSError as exc:                      # a file not there: bad usage, as a WAV that is not one
            return _fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)
    if not args.file:
        from voicecoach.launch import listen_live
        return listen_live(spotter, args.mic or cfg.mic, args.seconds)
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    from voicecoach.hearing.enroll import MIN_TAKES, enroll, save_enrollment
    from voicecoach.paths import enrollment_file
    path = args.out or enrollment_file()
    if args.forget:
        if not path.exists():
            print(f"no voice enrolment at {path}")
            return 0
        path.unlink()
        print(f"removed the voice enrolment {path}")
        return 0
    if args.takes < MIN_TAKES:
        return _fail(f"--takes {args.takes}: at least {MIN_TAKES} are needed (how they differ sets the "
                     "accept distance)", EXIT_USAGE)
    files = _take_files(args.take or [])
    if isinstance(files, str):
        return _fail(files, EXIT_USAGE)
    from voicecoach.hearing.words import default_keywords
    known = {k.phrase: k.action for k in default_keywords()}
    words = list(dict.fromkeys(" ".join(w.lower().split()) for w in args.word or []))
    words = words or list(files) or [p for p, a in known.items() if a == "safety"]
    for w in [*words, *files]:
        if w not in known:
            return _fail(f"cannot enrol {w!r}: not a word the coach listens for ({', '.join(known)})", EXIT_USAGE)
    for w in words:
        if files and len(files.get(w, [])) < args.takes:
            return _fail(f"{w!r}: {len(files.get(w, []))} take(s) given, --takes asks for {args.takes}", EXIT_USAGE)
    if set(files) - set(words):
        return _fail(f"--take given for {', '.join(sorted(set(files) - set(words)))}, which --word does not name",
                     EXIT_USAGE)
    if files:
        from voicecoach.audio import AudioFormatError, read_wav
        try:
            takes = {w: [read_wav(f) for f in files[w]] for w in words}
        except (OSError, AudioFormatError) as exc:
            return _fail(f"cannot read a take: {exc}", EXIT_USAGE)
    else:
        takes = _record_live(words, args)
        if takes is None:
            return EXIT_FAILURE
    try:
        new = enroll(takes)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE if files else EXIT_FAILURE)
    note = save_enrollment(new, path)
    print(f"enrolled {', '.join(words)}; saved to {path}{note}")
    return 0


def _take_files(specs: List[str]):
    """--take PHRASE=WAV options grouped by phrase; a message (str) for a malformed one."""
    files: Dict[str, List[Path]] = {}
    for spec in specs:
        phrase, sep, name = spec.partition("=")
        if not sep or not phrase.strip() or not name:
            return f"--take {spec!r}: expected PHRASE=FILE.wav, e.g. --take pain=pain1.wav"
        files.setdefault(" ".join(phrase.lower().split()), []).append(Path(name))
    return files


def _record_live(words: List[str], args: argparse.Namespace):
    """The takes from the microphone; None (after saying why) when no word was heard."""
    from voicecoach.config import load_config, pick
    from voicecoach.devices import DeviceError, PyAudioMicrophone, open_pyaudio
    from voicecoach.hearing.enroll import NoSpeech, record_takes
    print(f"Enrolling your voice: {args.takes} takes of {', '.join(repr(w) for w in words)}. Say each word "
          "when asked, as you would during a stretch; stay quiet in between.", flush=True)
    pa = open_pyaudio()
    try:
        mic = PyAudioMicrophone(pa, pick(args.mic, load_config().mic))
        try:
            if not mic.wait_ready():
                raise DeviceError("the microphone delivers no audio: check it with `voicecoach doctor`")
            return record_takes(mic, words, args.takes, sys.stdout)
        finally:
            mic.close()
    except NoSpeech as exc:
        _fail(str(exc))
        return None
    finally:
        pa.terminate()


def cmd_stop(args: argparse.Namespace) -> int:
    from voicecoach.instance import stop_running
    pid = stop_running()
    if pid is None:
        return _fail("no session is running")
    print(f"stopped the session (pid {pid})")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from voicecoach.doctor import print_devices
    return print_devices()


def cmd_doctor(args: argparse.Namespace) -> int:
    from voicecoach.config import load_config, pick
    from voicecoach.doctor import doctor
    cfg = load_config()
    return doctor(pick(args.mic, cfg.mic), pick(args.speaker, cfg.speaker), args.seconds, args.word, cfg.voice)


def cmd_remind(args: argparse.Namespace) -> int:
    from voicecoach import remind
    from voicecoach.config import load_config, pick
    if args.install or args.remove:
        lines = remind.install(args.at or remind.DEFAULT_TIMES) if args.install else remind.remove()
        print("\n".join(lines))
        return 0
    cfg = load_config()
    routine = load_routine(cfg.routine)
    print(remind.remind_now(routine, remind.today_done(pick(args.db, cfg.db)), pick(args.speaker, cfg.speaker),
                            args.speaker_file, cfg.voice, cfg.rate, cfg.volume))
    return 0


def cmd_button(args: argparse.Namespace) -> int:
    from voicecoach.button import serve
    return serve(args.pin)


def _clock_time(text: str) -> str:
    from voicecoach.remind import clock_time
    return clock_time(text)


def _voice_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--voice", help="speech voice id or name (see `voicecoach voices`)")
    p.add_argument("--rate", type=int, help="speech rate, words per minute")
    p.add_argument("--volume", type=float, help="speech volume, 0 to 1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicecoach", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"voicecoach {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: Dict[str, Callable[[argparse.Namespace], int]] = {}

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        commands[name] = func
        p = sub.add_parser(name, help=help_, description=help_, epilog=EPILOG)
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "run a stretching session (the built-in hamstring routine by default)")
    p.add_argument("routine", nargs="?", type=Path, help="routine YAML file")
    p.add_argument("--mic", help="microphone: device index or name (see `voicecoach devices`)")
    p.add_argument("--speaker", help="speaker: device index or name")
    p.add_argument("--mic-file", type=Path, help="read the microphone from this WAV (then silence)")
    p.add_argument("--speaker-file", type=Path, help="write what the coach plays to this WAV, as fast as possible")
    p.add_argument("--echo-db", type=float, help="with files: couple the speaker into the microphone at this level (dB)")
    p.add_argument("--text", action="store_true", help="print cues and counts with their times; typed lines are heard words")
    p.add_argument("--listen", action=argparse.BooleanOptionalAction, default=None,
                   help="listen for stop words (default); --no-listen: voice stop is off, said at the start")
    p.add_argument("--db", type=Path, help="history database (default: in the user's data directory)")
    p.add_argument("--timeline", type=Path, help="write what the coach plays and hears, with times, as JSON lines")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="keyword spotter (default auto: "
                   "the learned one for the default words, else pocketsphinx)")
    _voice_options(p)

    p = add("check", cmd_check, "validate routine files (exit 2 on any error)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")

    p = add("history", cmd_history, "show rounds done today against the daily target, and the last days")
    p.add_argument("--db", type=Path, help="history database")
    p.add_argument("--days", type=int, default=7, help="how many days to show (default 7)")
    p.add_argument("--target", type=int, help="rounds per day (default: the built-in routine's)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="every completed round as CSV")
    fmt.add_argument("--json", action="store_true", help="sessions and rounds as JSON")

    p = add("render", cmd_render, "render a routine's speech into the cache ahead of time")
    p.add_argument("routine", nargs="?", type=Path, help="routine YAML file")
    _voice_options(p)

    add("voices", cmd_voices, "list the speech voices the engine offers")

    p = add("listen", cmd_listen, "run the keyword spotter alone: one JSON line per detection")
    p.add_argument("--file", action="append", help="a WAV file to listen to (repeatable); default: the microphone")
    p.add_argument("--routine", type=Path, help="routine whose words to listen for")
    p.add_argument("--mic", help="microphone: device index or name")
    p.add_argument("--seconds", type=float, help="stop listening after this long")
    p.add_argument("--engine", choices=ENGINES, default="auto", help="keyword spotter (default auto)")

    p = add("enroll", cmd_enroll, "record your own voice saying the safety words once, so the coach "
            "hears them from you more surely (kept private in your data directory)")
    p.add_argument("--takes", type=int, default=3, help="takes of each word (default 3, at least 2)")
    p.add_argument("--word", action="extend", nargs="+", metavar="PHRASE",
                   help="word(s) to enrol (default: every safety word the coach listens for)")
    p.add_argument("--mic", help="microphone: device index or name (default: config file, then system)")
    p.add_argument("--take", action="append", metavar="PHRASE=WAV",
                   help="a take from a WAV file instead of the microphone, e.g. pain=pain1.wav (repeatable)")
    p.add_argument("--out", type=Path, help="enrolment file (default: enrollment.npz in the user's data directory)")
    p.add_argument("--forget", action="store_true", help="delete the enrolment (your voice templates) and exit")

    add("stop", cmd_stop, "stop the running session (like saying stop)")
    add("devices", cmd_devices, "list audio input and output devices, with the names --mic/--speaker take")

    p = add("doctor", cmd_doctor, "check speech, speaker, microphone and hearing; exit 1 if anything fails")
    p.add_argument("--mic", help="microphone: device index or name (default: config file, then system)")
    p.add_argument("--speaker", help="speaker: device index or name (default: config file, then system)")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to measure and to listen (default 5)")
    p.add_argument("--word", default="pain", help="the word to say in the hearing test (default pain)")

    p = add("remind", cmd_remind, "spoken reminders toward the daily target, from systemd user timers")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--now", action="store_true", help="speak the reminder now (silent once today's target is met)")
    what.add_argument("--install", action="store_true", help="install the reminder timer (times: --at)")
    what.add_argument("--remove", action="store_true", help="remove the reminder timer")
    p.add_argument("--at", action="append", type=_clock_time, metavar="HH:MM",
                   help="with --install: a reminder time, repeatable (default 09:00, 13:00, 18:00)")
    p.add_argument("--speaker", help="speaker: device index or name")
    p.add_argument("--speaker-file", type=Path, help="write the reminder to this WAV instead of playing it")
    p.add_argument("--db", type=Path, help="history database")

    p = add("button", cmd_button, "start and stop sessions with a GPIO push button (needs gpiozero)")
    p.add_argument("--pin", type=int, default=17, help="GPIO pin, BCM numbering (default 17)")
    parser.set_defaults(commands=commands)
    return parser


def main(argv: Optional[List[str]] = None, wrap: "Optional[Wrap]" = None) -> int:
    """The command line; `wrap` (no flag) is the tests' seam for device faults (launch.Wrap)."""
    from voicecoach.audio import AudioFormatError
    from voicecoach.devices import DeviceError
    from voicecoach.hearing import EngineMissing
    from voicecoach.hearing.enroll import EnrollmentError
    from voicecoach.history import HistoryError
    from voicecoach.instance import AlreadyRunning
    from voicecoach.routine import RoutineError
    from voicecoach.speech import SpeechEngineMissing
    parser = build_parser()
    args = parser.parse_args(argv)
    args.wrap = wrap
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except (RoutineError, AudioFormatError) as exc:   # a routine or a WAV given that is not one
        return _fail(str(exc), EXIT_USAGE)
    except AlreadyRunning as exc:
        return _fail(str(exc), EXIT_BUSY)
    except EngineMissing as exc:
        return _fail(str(exc), EXIT_MISSING)
    except (DeviceError, EnrollmentError, HistoryError, SpeechEngineMissing, OSError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 4
