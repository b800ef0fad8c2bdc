"""sparkls.plugins."""
