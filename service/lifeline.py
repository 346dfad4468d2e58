"""Child processes end with the region process, however it ends."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when `parent` dies, even by SIGKILL, so no
    child keeps a port, a key or a CPU without the process that uses it."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


async def ended(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait, without blocking the event loop, for a child to end (killed after `timeout`
    seconds), and collect its exit status so no zombie is left."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while process.poll() is None:
        if loop.time() > deadline:
            process.kill()
            deadline = float("inf")
        await asyncio.sleep(0.02)
