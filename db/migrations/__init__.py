"""Alembic environment and revisions of the findings database, run by oomfuzz.db.engine.upgrade."""
