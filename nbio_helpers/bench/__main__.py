"""``python -m nbio_helpers.bench``: the same as ``python -m nbio_helpers bench``."""

import sys

from nbio_helpers.bench.command import main

__all__: list[str] = []  # a command: nothing to import from here

sys.exit(main())
