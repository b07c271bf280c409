"""Run a command against the sandbox, or serve it in the foreground.

    python -m sandbox run -- ansible-playbook playbooks/provision.yml
    python -m sandbox serve            # prints the environment to export, Ctrl-C stops

(with ``tests/`` on PYTHONPATH; the Makefile does this). ``run`` starts the sandbox in this
process, runs the command with the sandbox's environment (endpoint, dummy credentials,
region), and stops the sandbox when the command ends, fails, or this process is
interrupted: the server lives in a thread of this process, so it cannot be orphaned.
"""

import argparse
import os
import signal
import subprocess
import sys

from sandbox.server import Sandbox


def _run(args):
    command = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("sandbox run: give the command to run after --", file=sys.stderr)
        return 2
    with Sandbox(port=args.port) as sandbox:
        env = dict(os.environ)
        env.update(sandbox.env())
        env["KEYLESS_SANDBOX_URL"] = sandbox.url
        child = subprocess.Popen(command, env=env)

        def forward(signum, _frame):
            child.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return child.wait()


def _serve(args):
    import threading

    with Sandbox(port=args.port) as sandbox:
        # The environment holds the sandbox's (dummy) secret key: it goes to a file only the
        # user can read, never to the terminal.
        directory = os.path.dirname(os.path.abspath(args.env_file))
        os.makedirs(directory, exist_ok=True)
        descriptor = os.open(args.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            for key, value in sorted(sandbox.env().items()):
                handle.write("export {0}={1}\n".format(key, value))
        print("sandbox listening on {0}; to use it: . {1}   (Ctrl-C stops it)".format(sandbox.url, args.env_file))
        sys.stdout.flush()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="run a command against a fresh sandbox")
    run.add_argument("--port", type=int, default=0, help="loopback port (default: a free one)")
    run.add_argument("command", nargs=argparse.REMAINDER)
    serve = sub.add_parser("serve", help="serve the sandbox until interrupted")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--env-file", default=".build/sandbox.env", help="where to write the environment")
    args = parser.parse_args(argv)
    return _run(args) if args.verb == "run" else _serve(args)


if __name__ == "__main__":
    sys.exit(main())
