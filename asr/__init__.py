"""asr domain package (built by its own issue)."""
