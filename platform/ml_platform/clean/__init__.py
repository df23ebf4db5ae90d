"""The clean layer, the same for every source kind: typing, UTC, dedup, quarantine, contract check."""
