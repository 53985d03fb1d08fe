"""The domain layer: tenancy-scoped queries and actions, one module per area.

Web pages, the operators' JSON API and the command line all read and act through it; only it and
``server.storage`` write SQL. ``scope`` holds the principal, the scope predicates, the role
checks and the audit of actions that every area module builds on.
"""
