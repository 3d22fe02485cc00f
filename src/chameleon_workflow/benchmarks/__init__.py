"""The project's benchmark: figures against the raw driver in the same run."""
