"""``python -m callcenter`` is the ``callcenter`` command."""

import sys

from .cli import main

sys.exit(main())
