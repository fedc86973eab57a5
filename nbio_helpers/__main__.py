"""``python -m nbio_helpers COMMAND ...``: see :mod:`nbio_helpers.cli.main`."""

import sys

from nbio_helpers.cli.main import main

__all__: list[str] = []  # a command: nothing to import from here

if __name__ == "__main__":
    sys.exit(main())
