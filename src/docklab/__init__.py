"""docklab: a hands-on Docker course that drives a real Docker Engine from JupyterLab."""

from docklab.engine import connect
from docklab.errors import DocklabError

__all__ = ["connect", "DocklabError"]
__version__ = "0.1.0"
