"""All verification: credentials, QR codes, sealed PDFs and seals, to reasoned reports.

It knows nothing of gRPC. The public surface is small: `Verifier` (over a region's
`RegionRecords`), `VerificationPolicy`, the errors, and `render_report` for people.
Ledger proofs are checked with the pure functions of `ledger.proof` and
`ledger.checkpoint`; PDF signatures with pyHanko.
"""
