"""Demo data: a deterministic generator of landing files (also the tests' fixtures) and a live drip."""

from ml_platform.demo.generator import generate, write_drip_file

__all__ = ["generate", "write_drip_file"]
