"""Data quality beyond the contract: is a well-formed partition believable?

The contract (`ml_platform.checks.contract`) says whether rows are well-formed. These checks say
whether a day has as many rows (`volume`) and as few missing values (`completeness`) as the
table's own history, arrived on time (`late_arrivals`), names each key once (`uniqueness`) and
points at things its dimensions know (`references`), and whether curated features still look as
they did (`drift`). Thresholds live in each source's or table's spec (`rules`).
"""
