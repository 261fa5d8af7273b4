"""`python -m gans.demo ckpt_path=...`: the README's name for `python -m gans.tools.demo` (a Gradio
app for a trained model)."""

import sys

from gans.tools.demo import main

if __name__ == "__main__":
    sys.exit(main())
