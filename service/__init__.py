"""The command line and (later) the gRPC service: translation and authorization only."""
