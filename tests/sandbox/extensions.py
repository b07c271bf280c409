"""Where moto differs from AWS in a way our modules can feel, the sandbox answers as AWS does.

Each extension registers on the ``SandboxApp`` of a started ``Sandbox``:
``app.extensions[(service, action)] = handler`` answers a request instead of moto, and
``app.reset_hooks`` forget an extension's own state on reset.
"""


def install(sandbox):
    """Register every extension on a started sandbox."""
    return sandbox
