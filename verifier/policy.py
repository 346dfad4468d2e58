"""What a verification demands, kept apart from the machinery that checks it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyhanko.sign.diff_analysis import ModificationLevel


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """The verifier's demands for one verification.

    `validation_time` answers "was it valid then?" (default: now);
    `expected_holder_id_number` binds the licence to the party in front of the
    verifier. `max_modification_level` is the most a PDF may change after a
    signature: new signatures (FORM_FILLING, when every changed field is a
    signature field signed later) and validation data (LTA_UPDATES).
    """

    validation_time: datetime | None = None
    expected_holder_id_number: str = ""
    max_modification_level: ModificationLevel = ModificationLevel.FORM_FILLING

    def __post_init__(self) -> None:
        if self.validation_time is not None and self.validation_time.tzinfo is None:
            raise ValueError("validation_time must be timezone-aware")
