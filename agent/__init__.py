"""camwarden agent: discovers and audits cameras, publishes signed status."""
