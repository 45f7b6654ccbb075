"""Who runs a cycle, so a cycle whose process died is recognised at once on the same host.

A ``running`` cycle blocks the next one (one writer). Time alone (``stale_after``) is the only
evidence across hosts, but on the host that started it — the CLI, or an Airflow worker — a
vanished process is proof: the killed run's cycle can be taken over immediately instead of
hours later.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def current_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            return False
        except OSError:
            return True
        return fields[0] != "Z"  # a zombie has exited; only its exit status is left
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(owner: str | None) -> str | None:
    """Why ``owner``'s process is known to be dead, or None when it may still be running."""
    if not owner or ":" not in owner:
        return None
    host, _, pid_text = owner.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid() or _pid_alive(pid):
        return None
    return f"its process {pid} on {host} has exited"
