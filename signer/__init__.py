"""Keys, the region PKI, licence credentials, PDF rendering and PAdES sealing.

It knows nothing of gRPC: the service layer hands it requests and gets back bytes.
"""
