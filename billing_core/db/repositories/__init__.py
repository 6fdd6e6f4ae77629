"""Repositories: small interfaces over one connection, used inside a unit of work."""
