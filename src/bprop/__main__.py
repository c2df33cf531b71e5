"""``python -m bprop`` runs the ``bprop`` command."""

import sys

from .cli import main

sys.exit(main())
