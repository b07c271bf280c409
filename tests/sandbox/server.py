"""The sandbox's AWS endpoint: moto in server mode, on loopback, inside this process.

One WSGI application sits in front of moto and gives the tests what moto lacks:

* a request log (service, action, status, parameters without secrets) that tests and
  ``make bench`` read to count API calls;
* *extensions*: handlers for (service, action) pairs that answer instead of moto, or change
  the request before moto sees it, where moto differs from AWS (see ``extensions.py``);
* a control API under ``/_sandbox/`` (reset, request log) for processes that do not share
  this one's memory.

The server runs in a daemon thread of the process that starts it, so it can never outlive
that process: no orphan server is ever left behind, whatever happens to a test.
"""

import io
import json
import re
import threading
import time
import urllib.parse

from werkzeug.serving import WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """No access log on the terminal: the sandbox keeps its own request log."""

    def log_request(self, *args, **kwargs):
        pass


# Parameters whose values must never reach the request log.
# (IMDS options such as HttpTokens=required are settings, not tokens: they stay readable.)
_SECRET_PARAM = re.compile(r"(secret|password|(?<!http)token|privatekey|userdata|credentials)", re.I)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")


class RequestRecord(dict):
    """One request as the log keeps it: service, action, status, params, time."""


class SandboxApp:
    """WSGI application: control API, extensions, request log, then moto."""

    def __init__(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        self._moto = DomainDispatcherApplication(create_backend_app)
        self._lock = threading.Lock()
        self.log = []
        # (service, action) -> callable(request_info) -> None | (status, headers, body)
        self.extensions = {}
        # callables(request_info) -> None | (status, headers, body), asked before anything
        self.interceptors = []
        # (service, action) -> callable(info, body) -> body: rewrite moto's answer
        self.response_filters = {}
        # service -> callable(info, status, body) -> body: rewrite moto's error answers (status >= 400)
        self.error_filters = {}
        # callables run after moto has been reset (extensions keep state of their own)
        self.reset_hooks = []
        # callables(info, status, body) told of every request the log records, once answered (body:
        # the bytes sent back; None when none are known, and for moto's answers to services not in
        # observed_services, which stream on untouched): the CloudTrail events (cloudtrail_events.py)
        self.observers = []
        self.observed_services = set()
        # control paths of other sandbox pieces (the IMDS emulators):
        # path prefix -> callable(method, path, body) -> (status, JSON-able payload)
        self.control_handlers = {}

    # ---- request parsing ------------------------------------------------------------
    @staticmethod
    def describe(environ, body):
        """Work out service, action and parameters of an AWS request."""
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = _CREDENTIAL_SCOPE.search(auth)
        service = match.group(2) if match else None
        region = match.group(1) if match else None
        params = {}
        content_type = environ.get("CONTENT_TYPE", "")
        if body and "x-www-form-urlencoded" in content_type:
            params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        query = dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        for key, value in query.items():
            params.setdefault(key, value)
        action = params.get("Action")
        target = environ.get("HTTP_X_AMZ_TARGET")
        if not action and target:
            action = target.rsplit(".", 1)[-1]
        if not action:
            action = "{0} {1}".format(environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        return {
            "service": service,
            "region": region,
            "action": action,
            "params": params,
            "body": body,
            "environ": environ,
        }

    @staticmethod
    def redact(params):
        return {
            key: ("<redacted>" if _SECRET_PARAM.search(key) else value)
            for key, value in params.items()
            if key not in ("Action", "Version")
        }

    # ---- WSGI -------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(environ, start_response, path)

        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        info = self.describe(environ, body)

        response = None
        for interceptor in list(self.interceptors):
            response = interceptor(info)
            if response is not None:
                break
        if response is None:
            handler = self.extensions.get((info["service"], info["action"]))
            if handler is not None:
                response = handler(info)
        if response is None:
            return self._to_moto(info, environ, start_response)

        status, headers, payload = response
        self._record(info, status, payload)
        start_response("{0} {1}".format(status, _REASONS.get(status, "Status")), list(headers))
        return [payload if isinstance(payload, bytes) else payload.encode("utf-8")]

    def _to_moto(self, info, environ, start_response):
        body = info["body"]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        response_filter = self.response_filters.get((info["service"], info["action"]))
        error_filter = self.error_filters.get(info["service"])
        if response_filter is None and error_filter is None and info["service"] not in self.observed_services:
            result = self._moto(environ, recording_start_response)
            self._record(info, seen.get("status", 0))
            return result

        captured = {}

        def capturing_start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            seen["status"] = int(status.split(" ", 1)[0])
            return lambda data: None

        body = b"".join(self._moto(environ, capturing_start_response))
        if seen["status"] == 200 and response_filter is not None:
            body = response_filter(info, body)
        elif seen["status"] >= 400 and error_filter is not None:
            body = error_filter(info, seen["status"], body)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(captured["status"], headers)
        self._record(info, seen["status"], body)
        return [body]

    def _record(self, info, status, body=None):
        if info["service"] is None and info["action"].startswith(("GET /moto-api", "POST /moto-api")):
            return
        if info["environ"].get("HTTP_X_KEYLESS_SANDBOX_ORIGIN"):  # EC2's own reads (IMDS emulator)
            return
        record = RequestRecord(
            service=info["service"],
            region=info["region"],
            action=info["action"],
            status=status,
            params=self.redact(info["params"]),
            time=time.time(),
        )
        if info.get("injected"):  # a fault the fault proxy (faults.py) injected; status 0: no answer
            record["injected"] = info["injected"]
        with self._lock:
            self.log.append(record)
        for observer in self.observers:
            observer(info, status, body)

    def clear_log(self):
        with self._lock:
            self.log = []

    def _control(self, environ, start_response, path):
        method = environ.get("REQUEST_METHOD")
        if path == "/_sandbox/log" and method == "GET":
            with self._lock:
                payload = json.dumps(self.log)
        elif path == "/_sandbox/log" and method == "DELETE":
            self.clear_log()
            payload = "{}"
        elif path == "/_sandbox/reset" and method == "POST":
            self.reset()
            payload = "{}"
        else:
            prefix = next((p for p in self.control_handlers if path == p or path.startswith(p + "/")), None)
            if prefix is None:
                start_response("404 Not Found", [("Content-Type", "application/json")])
                return [b'{"error": "unknown sandbox control path"}']
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            status, result = self.control_handlers[prefix](method, path, body)
            start_response("{0} {1}".format(status, _REASONS.get(status, "Status")),
                           [("Content-Type", "application/json")])
            return [json.dumps(result).encode("utf-8")]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [payload.encode("utf-8")]

    def reset(self):
        """Forget every AWS resource and the request log."""
        from moto.moto_api._internal import moto_api_backend

        moto_api_backend.reset()
        for reset_hook in self.reset_hooks:
            reset_hook()
        self.clear_log()


def json_control(path, control_path, method, body, get, post, delete):
    """The one shape of the sandbox's JSON control paths: GET ``get()``, POST ``post(JSON body)``,
    DELETE ``delete()``; (status, payload). A ValueError or TypeError from ``post`` (a bad
    configuration, bad JSON) answers 400 with the error; other methods 405; other paths 404."""
    if path.rstrip("/") != control_path:
        return 404, {"error": "unknown path {0}; use {1}".format(path, control_path)}
    if method == "GET":
        return 200, get()
    if method == "DELETE":
        return 200, delete()
    if method == "POST":
        try:
            return 200, post(json.loads(body.decode("utf-8")) if body else {})
        except (ValueError, TypeError) as exc:
            return 400, {"error": str(exc)}
    return 405, {"error": "use GET, POST or DELETE on {0}".format(control_path)}


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 500: "Internal Server Error", 503: "Service Unavailable"}


# Modules whose install(sandbox) teaches the sandbox what moto gets wrong.
EXTENSION_MODULES = ("extensions", "moto_fixes", "iam_authorization", "rules", "iam_extensions", "faults", "imds",
                     "limits", "organizations", "cloudtrail_events")


class Sandbox:
    """Start/stop the sandbox's AWS endpoint on a free loopback port.

    Usable as a context manager. ``env()`` gives the environment a module, the AWS CLI or a
    plain boto3 client needs to talk to it (dummy credentials, region, endpoint).
    """

    ACCESS_KEY = "AKIAKEYLESSSANDBOX01"
    # Never printed by anything of ours; the secret-scanning tests look for it.
    SECRET_KEY = "keylessSandboxSecretKeyDoNotPrint0000001"
    REGION = "us-east-1"

    def __init__(self, host="127.0.0.1", port=0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sandbox only listens on loopback, not on {0}".format(host))
        self.host = host
        self.port = port
        self.app = None
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://{0}:{1}".format(self.host, self.port)

    def start(self):
        self.app = SandboxApp()
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=QuietHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-moto", daemon=True)
        self._thread.start()
        self._wait_ready()
        import importlib

        package = __name__.rpartition(".")[0]
        for name in EXTENSION_MODULES:
            importlib.import_module(package + "." + name if package else name).install(self)
        return self

    def _wait_ready(self, timeout=10.0):
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=1) as response:
                    response.read()
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the sandbox did not answer on {0} within {1}s".format(self.url, timeout))
                time.sleep(0.05)

    def stop(self):
        if getattr(self, "imds", None) is not None:  # the IMDS emulators (imds.install)
            self.imds.stop_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def reset(self):
        self.app.reset()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- what clients need ------------------------------------------------------------
    def env(self):
        return {
            "AWS_URL": self.url,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
            "AWS_REGION": self.REGION,
            "AWS_DEFAULT_REGION": self.REGION,
            # Never reach out to a real instance metadata service from a test.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def client(self, service, **kwargs):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=kwargs.pop("region_name", self.REGION),
            aws_access_key_id=self.ACCESS_KEY,
            aws_secret_access_key=self.SECRET_KEY,
            **kwargs
        )

    def control(self, method, path, body=None):
        """Call a control path of this sandbox over HTTP, as another process would: (status, JSON)."""
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def calls(self, service=None, action=None, since=0):
        """The request log, optionally narrowed to a service and/or an action."""
        return [
            r for r in self.app.log[since:]
            if (service is None or r["service"] == service) and (action is None or r["action"] == action)
        ]
