"""camwarden agent: discovers and audits cameras, publishes signed status."""

from importlib.metadata import version

__version__ = version("camwarden")
