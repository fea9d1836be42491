"""Alembic's environment and revisions for the site database (run by ``store/migrate.py``)."""
