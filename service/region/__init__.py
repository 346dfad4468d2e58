"""The region's domain: registry, licences and their indexes, apart from gRPC."""
