"""Dahua cameras over the HTTP CGI API (digest, ``key=value`` bodies)."""
