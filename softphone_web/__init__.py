"""softphone_web domain package (built by its own issue)."""
