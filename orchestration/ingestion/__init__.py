"""Raw ingestion: locating the BAAC CSVs and loading them into DuckDB."""
