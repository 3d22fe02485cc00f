"""Allow ``python -m chameleon_workflow`` as well as the ``chameleon`` command."""

from chameleon_workflow.cli import main

if __name__ == "__main__":  # not when a spawned worker process re-imports the main module
    main()
