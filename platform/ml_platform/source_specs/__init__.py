"""One module per source, each defining `SPEC`. Discovered automatically; see README "Add your own source"."""
