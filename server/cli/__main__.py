"""``python -m server.cli``: the ``dealflow`` command (used by ``dealflow worker --processes``)."""

import sys

from server.cli import main

sys.exit(main())
