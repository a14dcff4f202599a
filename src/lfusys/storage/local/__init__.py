"""The embedded backend: SQLite metadata and event queue, filesystem blobs, under one data directory."""
