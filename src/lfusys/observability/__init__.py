"""Logging, request context and health probes."""
