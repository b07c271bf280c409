"""Fixtures of tests/packaging/ (defined in packaging_support.py, shared with the test modules)."""

from packaging_support import collection_tarball, installed_collections, request_signers

__all__ = ("collection_tarball", "installed_collections", "request_signers")
