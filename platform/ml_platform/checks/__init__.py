"""Asset checks: the blocking `contract` check of clean and curated tables, the raw `schema` check."""
