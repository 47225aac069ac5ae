"""Findings, campaigns and corpus entries in SQL (SQLAlchemy 2.0, Alembic migrations)."""
