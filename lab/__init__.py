"""camwarden camera lab: simulated cameras for tests, demos and benchmarks."""
