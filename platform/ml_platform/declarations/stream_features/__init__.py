"""Stream feature views: one module per view, each defining `VIEW` (a `StreamFeatureView`): its
contract, the stream source it aggregates, its window and aggregates.

Discovered automatically (`ml_platform.discovery`); the asset comes from
`ml_platform.curated.stream_asset` and runs in the same run as the source's raw asset.
"""
