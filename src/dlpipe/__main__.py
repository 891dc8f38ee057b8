"""``python -m dlpipe`` is the ``dlpipe`` command (torchrun starts ranks this way)."""

import sys

from dlpipe.cli import main

sys.exit(main())
