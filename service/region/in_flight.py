"""Issuances whose credential is being signed outside the event loop.

An issuance is checked and built synchronously, as every change is (see `common`),
but its QR code names the ledger index it will be recorded at and its identifier a
serial number, and both depend on the issuances before it. While the signing worker
signs, other calls run. So an issuance *predicts* its index and serial — the next
free ones after every issuance still in flight — and the prediction is checked,
synchronously, right before the record is submitted:

- results come back in the order the jobs were sent, so in-flight issuances resume
  in the order they predicted;
- the prediction holds when the ledger's next index is the one predicted and no
  issuance ahead of this one left without being recorded: exactly the issuances
  ahead were recorded since the checks, and nothing else — no other change that
  might have made a check stale.

When it does not hold (another change was recorded in between, an issuance ahead
failed or was cancelled), the issuance starts again from its checks and signs in
process. A call with the same request id or the same licence number as one in
flight waits for that one to end first, then checks afresh.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from ledger import Ledger


@dataclass(slots=True)
class Ticket:
    ledger_index: int  # predicted
    serials_ahead: int  # issuances in flight before this one for the same type and issuer
    position: int  # in the order of entering
    failures_seen: int  # how many issuances had left unrecorded when this one entered
    keys: tuple[tuple[str, ...], ...]  # the request and the licence number it holds
    serial_key: tuple[str, str]
    ended: asyncio.Future[None]


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._entered = 0
        # The positions of issuances that left unrecorded while others were in flight.
        self._failures: list[int] = []
        self._serials: Counter[tuple[str, str]] = Counter()
        self._held: dict[tuple[str, ...], asyncio.Future[None]] = {}

    def __len__(self) -> int:
        return self._count

    def conflict(self, *keys: tuple[str, ...]) -> asyncio.Future[None] | None:
        """An in-flight issuance holding one of `keys`: wait for it, then check again."""
        for key in keys:
            if (ended := self._held.get(key)) is not None:
                return ended
        return None

    def enter(
        self, ledger: Ledger, keys: tuple[tuple[str, ...], ...], serial_key: tuple[str, str]
    ) -> Ticket:
        ticket = Ticket(
            ledger_index=ledger.next_index + self._count,
            serials_ahead=self._serials[serial_key],
            position=self._entered,
            failures_seen=len(self._failures),
            keys=keys,
            serial_key=serial_key,
            ended=asyncio.get_running_loop().create_future(),
        )
        self._count += 1
        self._entered += 1
        self._serials[serial_key] += 1
        for key in keys:
            self._held[key] = ticket.ended
        return ticket

    def holds(self, ticket: Ticket, ledger: Ledger) -> bool:
        """Whether `ticket`'s prediction is still right (call synchronously before submit)."""
        if ledger.next_index != ticket.ledger_index:
            return False
        # An issuance ahead that was counted as recorded but was not.
        return all(p > ticket.position for p in self._failures[ticket.failures_seen :])

    def leave(self, ticket: Ticket, *, recorded: bool) -> None:
        self._count -= 1
        self._serials[ticket.serial_key] -= 1
        if not self._serials[ticket.serial_key]:
            del self._serials[ticket.serial_key]
        for key in ticket.keys:
            if self._held.get(key) is ticket.ended:
                del self._held[key]
        if not recorded:
            # Every later prediction counted this issuance as recorded before it.
            self._failures.append(ticket.position)
        if not self._count:
            self._failures.clear()  # no ticket is left to look at them
        ticket.ended.set_result(None)
