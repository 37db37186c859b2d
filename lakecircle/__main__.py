"""``python -m lakecircle``: the command line, or the original entry point when run bare."""

from lakecircle.cli import main

if __name__ == "__main__":
    main()
