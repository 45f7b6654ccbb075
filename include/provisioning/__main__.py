"""``python -m include.provisioning``: see ``cli``."""

import sys

from include.provisioning.cli import main

sys.exit(main())
