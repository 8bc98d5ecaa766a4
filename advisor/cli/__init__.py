"""The ``advisor`` command line."""
