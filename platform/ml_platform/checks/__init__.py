"""Every asset check the platform runs, one module per kind of check.

Blocking (a failing partition holds everything downstream of it):
- `contract`: clean and curated rows against their Pandera contract, in DuckDB;
- `privacy`: no raw personal value in a curated table.

Raw layer: `schema` (column sets and value kinds of each batch), `files` (every landed file read in
full and accounted for), `messages` (every offset of a stream read, every message usable),
`landing_freshness` (has the source stopped landing?).

Is a well-formed clean partition believable? (`quality`: their specs and the run's outcomes)
`volume`, `completeness`, `late_arrivals`, `uniqueness`, `references`; on curated features,
`drift`. They share `verdicts` (levels, history) and `profiles` (each written day's rows and nulls).

Thresholds are declared with the tables (`ml_platform.contracts.quality_rules`, `.freshness`); a
check reads tables and figures and returns verdicts; the layers attach and publish them.
"""
