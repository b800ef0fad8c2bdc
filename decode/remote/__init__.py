"""sparkls.decode.remote: a remote OpenAI-compatible engine (HTTP/SSE client and the decode engine over it)."""
