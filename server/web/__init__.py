"""The dashboard and operator API: users, sessions and tokens, the scoped read and action layer,
server-rendered pages in Vietnamese and English.

Every query and action a route performs goes through ``server.domain.scope.Scoped``, built from the
authenticated principal; that class is the one place where the organisation subtree and the role
are enforced.
"""
