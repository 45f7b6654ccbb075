"""``python -m include.provisioning``: see ``cli``."""

import gc
import sys

from include.provisioning.cli import main
from include.provisioning.frame_stack import call_with_roomy_frame_stack

# Every command's calls run in one pre-grown stretch of CPython's frame stack: a cold
# provision-user spent a third of a second of system time opening and closing 16 KiB chunks of it.
status = call_with_roomy_frame_stack(lambda: main(process_ends=True))
# The process ends here. Freezing moves every object into the collector's permanent generation, so
# the interpreter's last collections at exit skip them: with GX, pandas and SQLAlchemy loaded that
# sweep took 0.6-1.0 CPU seconds (measured), a third of a cold provision-user's budget. Nothing
# is lost: files, the state store and logging are closed or flushed by the commands and atexit.
gc.freeze()
sys.exit(status)
