"""Reading the kernel's TCP queues of Module 18's data connection, where the system allows.

ZeroMQ keeps its TCP sockets to itself (``ZMQ_FD`` is a signalling descriptor, not the
connection), so ``SIOCOUTQ``/``SIOCINQ`` cannot be asked of them. Instead this runs
``ss -tn`` for the data port and parses it with :func:`lab.core.transport.parse_ss`.
On a system without ``ss`` (macOS, Windows) the answer is None: "not available".
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Optional

from lab.core.transport import KernelQueues, parse_ss

SS_TIMEOUT_S = 1.0
NOT_AVAILABLE = "not available"


def kernel_source() -> str:
    """Where kernel figures come from on this machine: ``ss``, or "not available"."""
    if sys.platform.startswith("linux") and shutil.which("ss"):
        return "ss"
    return NOT_AVAILABLE


def read_kernel_queues(port: int) -> Optional[KernelQueues]:
    """Send-Q of the producer's end and Recv-Q of the consumer's end of connections on
    ``port`` (loopback: both ends are on this machine); None when not available."""
    if kernel_source() != "ss":
        return None
    try:
        done = subprocess.run(
            ["ss", "-tn", f"( sport = :{port} or dport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=SS_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_ss(done.stdout, port) if done.returncode == 0 else None
