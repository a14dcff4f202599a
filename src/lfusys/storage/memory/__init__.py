"""The memory backend: every port in this process's memory, gone at exit (tests, trying things out)."""
