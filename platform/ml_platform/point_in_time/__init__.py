"""The point-in-time engine: each entity row gets a feature as it was known at the row's time.

- `join`: `point_in_time_join`, snapshot accuracy (a view's rows, no future rows, none written
  later, TTL applied);
- `temporal`: `temporal_join`, windowed features as of each row's exact time from source rows;
- `frontier`: the rows of a view that can ever answer, kept by the view's writer.

Feature views (`ml_platform.curated`) use it to keep their frontier; `ml_platform.training`
builds training sets and serving lookups on it.
"""
