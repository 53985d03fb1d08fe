"""camwarden collector: verifies and stores signed reports, serves the dashboard."""

from importlib.metadata import version

__version__ = version("camwarden")
