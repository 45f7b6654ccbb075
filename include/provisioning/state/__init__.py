"""State between cycles: watermark, snapshot, escrow, quarantine, cycles, provisioning log."""

from include.provisioning.state.codec import StateError
from include.provisioning.state.escrow import next_attempt_at
from include.provisioning.state.store import StateStore

__all__ = ["StateError", "StateStore", "next_attempt_at"]
