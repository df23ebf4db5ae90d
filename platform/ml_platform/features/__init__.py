"""Curated ML features built from clean tables."""
