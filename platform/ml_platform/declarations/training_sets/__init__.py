"""Training sets: one module per set, each defining `TRAINING_SET` (label, features, split).

Discovered automatically (`ml_platform.discovery`); the platform makes the training-set asset,
its baseline model and the leaky comparison model (`ml_platform.training`).
"""
