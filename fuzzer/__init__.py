"""Atheris fuzz campaigns over the engine, with interleaving coverage, dedup and minimisation."""
