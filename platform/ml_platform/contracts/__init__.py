"""Pandera models, one per table: each is that table's schema, rules, docs and UI column schema."""
