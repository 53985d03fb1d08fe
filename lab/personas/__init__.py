"""Persona data files (one TOML per vendor persona)."""
