"""camwarden camera lab: simulated cameras for tests, demos and benchmarks."""

from importlib.metadata import version

__version__ = version("camwarden")
