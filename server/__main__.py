"""``python -m server``: the same as the ``camwarden-server`` console script."""

from server.cli import entrypoint

entrypoint()
