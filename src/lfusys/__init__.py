"""LFUSYS: upload very large files from the browser in parallel, checked, resumable chunks."""

__version__ = "0.1.0"
"""The one place the version is written (the package's metadata reads it from here)."""

__all__ = ["__version__"]
