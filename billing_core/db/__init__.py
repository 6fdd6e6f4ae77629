"""Database adapter: sqlmodel tables, engine set-up and Alembic migrations."""
