"""Benchmarks of the ledger, each figure printed beside a raw primitive of the same run.

Run with ``python -m bench`` (``make bench``). Every figure is one JSON object on its own
line of stdout; progress and diagnostics go to stderr. The machine is assumed noisy, so
each ledger figure carries the rate or latency of the storage or crypto primitive it is
built on, measured moments earlier or later in the same process, and their ratio.

Nothing under ``tests/`` imports this package.
"""
