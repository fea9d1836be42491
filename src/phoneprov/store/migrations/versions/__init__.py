"""Alembic revisions, numbered on from the custom migrations' last ``schema_version`` (5)."""
