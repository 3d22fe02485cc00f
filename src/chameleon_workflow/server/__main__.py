"""Serve the HTTP API: ``python -m chameleon_workflow.server --host 127.0.0.1 --port 8000``."""

from chameleon_workflow.server.run import main

if __name__ == "__main__":
    main()
