"""Data quality beyond the contract: how each partition compares with the table's own history.

The contract (`ml_platform.checks.contract`) says whether rows are well-formed. These checks
say whether a well-formed partition is believable: as many rows as usual (`volume`), as few
missing values as usual (`completeness`). Thresholds live in each source's spec (`rules`).
"""
