"""Schema revisions of the findings database, oldest first by their down_revision chain."""
