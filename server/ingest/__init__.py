"""Ingest: the pure-ish pipeline (verify, decode, address, freshness, replay, chain) and the one
MQTT subscriber that feeds it."""
