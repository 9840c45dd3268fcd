"""Errors whose message is written for the user and shown verbatim in the docker."""


class UserError(Exception):
    """Something the user can fix (wrong layer, no document, backend not running...)."""
