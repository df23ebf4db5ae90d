"""Source specs and their discovery: one small declarative module per source."""
