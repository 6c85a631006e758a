"""The CLI boundary shared by every `python -m tfllm.*` command."""

import sys
import textwrap

from absl import app, flags

from tfllm.errors import ConfigError, TfllmError

CONFIG_ERROR_EXIT_CODE = 2


def run(main, pass_unknown_flags=False):
    """Runs an absl `main`, turning user errors into one paragraph and exit code 2.

    Positional arguments are refused. With `pass_unknown_flags`, flags this program
    does not define reach `main` in argv (for Beam's pipeline options) instead of
    failing absl's parsing, and `main` checks them.
    """

    def guarded_main(argv):
        try:
            if len(argv) > 1 and not pass_unknown_flags:
                raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
            return main(argv)
        except TfllmError as error:
            fail(error)

    def parse(argv):
        try:
            return flags.FLAGS(argv, known_only=pass_unknown_flags)
        except flags.Error as error:  # a bad flag file or value: one paragraph, exit 2
            fail(error)

    app.run(guarded_main, flags_parser=parse)


def fail(error):
    """Prints `error` as one paragraph and exits with the configuration-error status."""
    message = " ".join(str(error).split())
    # Paths and flags stay whole on one line, so they can be copied (and searched for).
    sys.stderr.write(textwrap.fill(f"error: {message}", width=100, break_on_hyphens=False,
                                   break_long_words=False) + "\n")
    sys.exit(CONFIG_ERROR_EXIT_CODE)
