"""The ``transferkit`` command: train on your images, predict, evaluate, run experiments.

Exit codes: 0 success, 2 usage or input error (the whole message in CLI terms,
no traceback unless ``--debug``), 1 anything unexpected (one line; ``--debug``
shows the traceback), 130 interrupted.

Startup stays fast and quiet: ``--help`` and ``info`` never import TensorFlow,
and the commands that do import it with its C++ start-up chatter hidden
(``-v`` shows it).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import warnings
from collections.abc import Collection

from transferkit import _backend

# Before anything imports TensorFlow: hide its C++ INFO/WARNING/ERROR start-up lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Library messages name Python arguments; the CLI user knows the flags.
_CLI_TERMS = (
    (r"weights=<path to a weights file>", "--weights FILE"),
    (r"weights=None", "--weights none"),
    (r"\bdata_dir=", "--data PATH"),
    (r"\bimage_size=", "--image-size N"),
    (r"\bclass_weight='balanced'", "--class-weight balanced"),
)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    from transferkit.cli._parser import (
        build_parser,
        command_flags,
        common_options_first,
        list_experiments,
    )

    process = argv is None  # the process's own command, not a call from Python
    argv = common_options_first(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "run" and args.experiment in (None, "list"):
        return list_experiments(asked=args.experiment == "list")
    args.flags = command_flags(parser, args)  # messages hint only at options it has
    args.argv = argv  # which options were given, not defaulted: flags override --config
    level = "debug" if args.debug else args.verbosity
    configure_logging(level, flags=args.flags)
    from transferkit.cli._interrupt import catching_interrupts

    # The process's own command ends when Ctrl-C cannot stop it within seconds.
    give_up = functools.partial(_interrupted, args, exit_now=True) if process else None
    with catching_interrupts(on_give_up=give_up) as interrupts:
        try:
            return _run(args)
        except KeyboardInterrupt:
            interrupts.stopped.set()
            return _interrupted(args, exit_now=process)
        except Exception as exc:  # noqa: BLE001 - never a traceback without --debug
            if interrupts.received:  # a KeyboardInterrupt that a library turned into an error
                interrupts.stopped.set()
                return _interrupted(args, exit_now=process)
            if args.debug:
                raise
            return _report_error(exc, args)


def _run(args) -> int:
    """The command's checks, TensorFlow if it needs it, then the command itself."""
    with warnings.catch_warnings():
        if not args.debug:  # advice reads like the other messages, without source lines
            warnings.showwarning = functools.partial(_show_warning, flags=args.flags)
        if args.command in ("train", "run"):  # TF_CONFIG: checked before TensorFlow reads it
            from transferkit.cli._distribute import check

            check(args)
        if getattr(args, "precheck", None):  # cheap checks first: answered in under a second
            args.precheck(args)
        if getattr(args, "needs_tensorflow", True) or getattr(args, "role", None):
            import_tensorflow(args)
        if getattr(args, "role", None) is None:
            return args.func(args)
        from transferkit.cli._distribute import job

        with job(args):
            return args.func(args)


def _report_error(exc: Exception, args) -> int:
    """One line for an error: exit 2 for transferkit's (bad input), 1 for anything else."""
    from transferkit.errors import TransferkitError

    if isinstance(exc, TransferkitError):
        print(f"transferkit: error: {cli_terms(str(exc), args.flags)}", file=sys.stderr)
        return EXIT_USAGE
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    print(f"transferkit: unexpected {type(exc).__name__}: {first} "
          "(run with --debug for the traceback)", file=sys.stderr)
    return EXIT_FAILURE


def _interrupted(args, *, exit_now: bool) -> int:
    """Say the command was interrupted and how to run it again; exit 130 (at once: ``exit_now``).

    Exiting at once skips the interpreter's teardown, which took 4-9 s after
    TensorFlow had trained; every file is written atomically, so nothing is lost.
    """
    print(f"transferkit: interrupted. {_after_interrupt(args)}", file=sys.stderr)
    if exit_now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    return EXIT_INTERRUPTED


def _after_interrupt(args) -> str:
    """What an interrupted command leaves, and how to run it again (one sentence)."""
    if args.command == "train":
        from transferkit.cli._checks import out_dir
        from transferkit.cli._config import RUN_CONFIG_FILE, is_run_config

        # Stopped before --config or --resume gave IMAGES_DIR, or before the run began.
        if args.images is None or not is_run_config(out_dir(args) / RUN_CONFIG_FILE):
            return "Nothing was written; run the same command again."
        return f"What had finished is kept in {out_dir(args)}; {_train_again(args)}"
    if args.command == "quickstart":
        where = args.out
    elif args.command == "run":
        where = "the experiment's --out folder"
    else:  # predict, evaluate and report write their files at the end
        return "Nothing was written; run the same command again."
    again = " with --overwrite" if "--overwrite" in args.flags else ""
    return f"What had finished is kept in {where}; to start again, run the same command{again}."


def _train_again(args) -> str:
    """How to go on with an interrupted ``train``: continue it, or start it again."""
    if args.budget is not None:  # a budget's plan was timed when the run started
        return "to start again, run the same command with --overwrite."
    if args.resume:
        return "to continue, run the same command again."
    if args.overwrite:
        return "to continue, run the same command with --resume instead of --overwrite."
    return "to continue, run the same command with --resume (or with --overwrite to start again)."


def import_tensorflow(args) -> None:
    """Import TensorFlow (on that backend) with its start-up lines hidden unless -v/--debug."""
    _backend.quiet_tensorflow_import(show=args.debug or args.verbosity == "verbose")


def cli_terms(message: str, flags: Collection[str] | None = None) -> str:
    """A library message with Python argument names replaced by the CLI's flags.

    Args:
        message: The library's message.
        flags: The options of the command running. A hint in parentheses naming
            an argument whose flag is not among them (``(pass image_size= to
            choose)`` where there is no ``--image-size``) is left out. None: any.
    """
    for pattern, flag in _CLI_TERMS:
        if flags is not None and flag.split()[0] not in flags:
            message = re.sub(rf"\s*\([^()]*{pattern}[^()]*\)", "", message)
        message = re.sub(pattern, flag, message)
    return message


def _show_warning(message, category, filename, lineno, file=None, line=None, *,
                  flags: Collection[str] | None = None) -> None:
    """``warnings.showwarning`` of the CLI: ``transferkit: warning: ...`` for advice.

    A ``UserWarning`` (transferkit's advice, or a library's) prints as one line
    in the CLI's terms (``flags``: see :func:`cli_terms`); other categories keep
    Python's format, with their source.
    """
    if issubclass(category, UserWarning):
        print(f"transferkit: warning: {cli_terms(str(message), flags)}", file=file or sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(),
              file=file or sys.stderr)


class _Formatter(logging.Formatter):
    def __init__(self, flags: Collection[str] | None = None) -> None:
        super().__init__()
        self.flags = flags

    def format(self, record: logging.LogRecord) -> str:
        kind = "warning: " if record.levelno >= logging.WARNING else ""
        return f"transferkit: {kind}{cli_terms(record.getMessage(), self.flags)}"


def configure_logging(level: str = "normal", *, flags: Collection[str] | None = None) -> None:
    """Route ``transferkit`` log lines to stderr once (repeated calls replace the handler).

    Args:
        level: ``"quiet"`` (warnings only), ``"normal"``, ``"verbose"`` or ``"debug"``.
        flags: The options of the command running: log lines name Python
            arguments by these flags (see :func:`cli_terms`).
    """
    log = logging.getLogger("transferkit")
    for handler in [h for h in log.handlers if getattr(h, "_transferkit_cli", False)]:
        log.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._transferkit_cli = True
    handler.setFormatter(_Formatter(flags))
    log.addHandler(handler)
    log.setLevel({"quiet": logging.WARNING, "debug": logging.DEBUG}.get(level, logging.INFO))
    log.propagate = False
    os.environ["TRANSFERKIT_VERBOSITY"] = level  # progress display: see training.progress_verbose


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
