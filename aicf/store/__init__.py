"""The store: one interface (interface.py) and three backends (memory, SQLite, PostgreSQL)."""
