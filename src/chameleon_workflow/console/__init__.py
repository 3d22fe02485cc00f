"""The audit console: server-rendered pages under ``/ui`` for reviewers, in any browser.

``create_console`` builds the app the server mounts; ``ConsoleBackend`` is what the
server hands it (the engine, the token check, the checkpoint key, its live numbers).
Templates and the stylesheet ship inside the package: the console needs no CDN.
"""

from chameleon_workflow.console.app import create_console
from chameleon_workflow.console.backend import ConsoleBackend, ServiceState, Viewer, Vitals

__all__ = ["ConsoleBackend", "ServiceState", "Viewer", "Vitals", "create_console"]
