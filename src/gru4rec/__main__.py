"""``python -m gru4rec``: the same as the ``gru4rec`` command."""

from __future__ import annotations

import sys

from gru4rec.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
