"""The store: one interface (interface.py) and two SQL backends (SQLite, PostgreSQL) over one SQL source."""
