"""Finished files: list, metadata, signed download links, serving bytes, delete."""
