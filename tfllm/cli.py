"""The CLI boundary shared by every `python -m tfllm.*` command."""

import sys
import textwrap

from absl import app

from tfllm.errors import TfllmError

CONFIG_ERROR_EXIT_CODE = 2


def run(main):
    """Runs an absl `main`, turning user errors into one paragraph and exit code 2."""

    def guarded_main(argv):
        try:
            return main(argv)
        except TfllmError as error:
            message = " ".join(str(error).split())
            sys.stderr.write(textwrap.fill(f"error: {message}", width=100) + "\n")
            sys.exit(CONFIG_ERROR_EXIT_CODE)

    app.run(guarded_main)
