"""How runs execute on one machine under `dagster dev` (named in `dagster.yaml`); not needed by a
deployment that launches runs elsewhere (`deploy/dagster.yaml`).

- `launcher`: the run launcher: runs start as forks (`forks`) and run monitoring sees dead ones;
- `forks`, `preload`, `fork_server_preload`: the fork server that has imported Dagster, the
  libraries and the platform's definitions once;
- `slot_polling`: a step waiting for the warehouse's pool slot takes it within 0.1 s, asleep meanwhile;
- `queue`: the run queue takes runs of newer days first.

Dagster's private APIs these rely on are reached through `ml_platform.dagster_private`.
"""
