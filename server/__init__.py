"""sparkls.server."""
