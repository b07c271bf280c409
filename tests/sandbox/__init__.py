"""The local AWS that tests and the demo use: loopback only, no account needed."""

from .server import Sandbox  # noqa: F401
