"""Alembic migrations of the Chameleon schema."""
