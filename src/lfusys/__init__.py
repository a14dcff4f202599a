"""LFUSYS: upload very large files from the browser in parallel, checked, resumable chunks."""

from importlib.metadata import version

__version__ = version("lfusys")

__all__ = ["__version__"]
