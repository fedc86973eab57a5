"""``python -m nbio_helpers COMMAND ...``: see :mod:`nbio_helpers.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
