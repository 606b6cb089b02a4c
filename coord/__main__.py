"""``python -m coord``: see :mod:`coord.cli`."""

from __future__ import annotations

import sys

from coord.cli import main

sys.exit(main())
