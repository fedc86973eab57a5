"""``python -m nbio_helpers.bench``: the same as ``python -m nbio_helpers bench``."""

import sys

from .command import main

sys.exit(main())
