"""Files landing in a folder: CSV, JSON Lines and Parquet, picked up by a landing sensor."""

from ml_platform.ingestion.files.spec import FILE_FORMATS, FileSourceSpec

__all__ = ["FILE_FORMATS", "FileSourceSpec"]
