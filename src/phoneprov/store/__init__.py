"""Persistence: devices, events, credentials. SQLAlchemy Core; SQLite or PostgreSQL by URL."""
