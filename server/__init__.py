"""camwarden collector: verifies and stores signed reports, serves the dashboard."""
