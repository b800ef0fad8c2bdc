"""sparkls.decode.ngram: the n-gram core (counts of what followed the same tokens in the workspace)."""
