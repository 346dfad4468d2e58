"""The verifier's one error hierarchy.

A verification that concludes "forged" is not an error: it is a report. Errors are
for requests that cannot be verified at all.
"""

from __future__ import annotations


class VerificationError(Exception):
    """Base of everything the verifier raises."""


class UnusableInputError(VerificationError, ValueError):
    """The input is empty or too large to be worth a report."""
