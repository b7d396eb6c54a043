"""The migrations, one file per schema change, applied in order by Alembic."""
