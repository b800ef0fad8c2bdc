"""sparkls.decode."""
