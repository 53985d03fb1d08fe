"""The throwaway broker lives in the lab (the demo uses it too); tests import it from here."""

from lab.broker import Mosquitto, free_port, wait_port

__all__ = ["Mosquitto", "free_port", "wait_port"]
