"""All verification: credentials, PDFs, seals, trust lists, ledger proofs and reports.

It knows nothing of gRPC. Ledger proofs are checked with the pure functions of
`ledger.proof`, `ledger.checkpoint` and `ledger.bundle`.
"""
