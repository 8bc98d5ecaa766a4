"""advisor: a threading code advisor for Python."""

__version__ = "0.1.0"

