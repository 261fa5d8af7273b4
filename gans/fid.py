"""`python -m gans.fid`: the README's name for `python -m gans.tools.fid` (FID of two image sets).
The metric itself is `gans.metrics.fid`."""

import sys

from gans.tools.fid import main

if __name__ == "__main__":
    sys.exit(main())
