"""sparkls.backends."""
