"""Child process of the crash test: appends concurrently and reports each acknowledgement.

Each line on stdout is ``<index> <entry>`` printed only after `append` returned, i.e.
after the entry's batch was synced. The parent kills this process with SIGKILL at an
arbitrary moment and then checks that every reported line is in the reopened ledger.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from service.datadir import DataDir


async def main(root: Path, writers: int) -> None:
    ledger = DataDir(root).open()
    out = sys.stdout

    async def writer(w: int) -> None:
        n = 0
        while True:
            entry = f"writer {w} entry {n} ".encode() * 4
            index = await ledger.append(entry)
            out.write(f"{index} {entry.decode()}\n")
            out.flush()
            n += 1

    await asyncio.gather(*(writer(w) for w in range(writers)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
