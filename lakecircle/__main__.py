"""``python -m lakecircle``: the command line, or the original entry point when run bare."""

import sys

from lakecircle.app.launch import prepare

if __name__ == "__main__":
    prepare(sys.argv[1:])
    from lakecircle.app.cli import main

    main()
