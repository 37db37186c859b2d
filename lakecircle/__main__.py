"""``python -m lakecircle``: the command line, or the original entry point when run bare."""

import sys

from lakecircle.app.launch import prepare, run_command_line

if __name__ == "__main__":
    prepare(sys.argv[1:])
    run_command_line()
