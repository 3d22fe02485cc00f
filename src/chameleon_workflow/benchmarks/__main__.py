"""Allow ``python -m chameleon_workflow.benchmarks``, the same run as ``chameleon benchmark``."""

from chameleon_workflow.benchmarks.runner import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    raise SystemExit(main())
