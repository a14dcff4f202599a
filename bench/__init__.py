"""Benchmarks: they print figures and are never asserted in tests (see bench/README.md)."""
