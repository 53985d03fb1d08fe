"""Credential groundwork for AUTH-01/03/04: the default-credential catalogue, the lockout-safe
guess planner, password assessment and keyed password fingerprints. Pure: no network."""
