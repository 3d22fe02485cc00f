"""Allow ``python -m chameleon_workflow`` as well as the ``chameleon`` command."""

from .cli import main

main()
