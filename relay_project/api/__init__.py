"""Pieces every REST endpoint shares: the error envelope, strict fields, keyset pagination."""
