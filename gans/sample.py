"""`python -m gans.sample`: the README's name for `python -m gans.tools.sample` (draw images from a checkpoint)."""

import sys

from gans.tools.sample import main

if __name__ == "__main__":
    sys.exit(main())
