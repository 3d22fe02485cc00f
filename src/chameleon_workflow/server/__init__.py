"""The HTTP server: FastAPI routes over the engine, bearer tokens, metrics and health."""
