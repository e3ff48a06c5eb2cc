"""Scenario: the OpenAPI contract. docs/openapi.yaml describes the gateway's
REST API; this checks the description against real processes: the gateway in
front of mserv1 and mserv2 over gRPC, gateways whose backends fail in each
documented way, and (as root) a private RabbitMQ node for the queued calls.

Every response is checked against the operation's documented response for
its status: the Content-Type, every documented header (and no undocumented
one), the body against the documented JSON Schema (2020-12, `$ref`s resolved
in the whole document). Every documented parameter is sent with valid values
(answered as documented) and invalid ones (a 400 problem naming it). HEAD and
the other methods are checked on every documented path, and paths that are not
documented must be 404. What was exercised is recorded, and the last test
asserts that every documented (path, status) and parameter was: a route, status
or parameter added to the document without a way to exercise it here fails.

Needs PyYAML and jsonschema >= 4 (Debian: python3-yaml, python3-jsonschema):
without them the scenario is skipped, or fails when CI is set."""

import base64
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import unittest

import harness

try:
    import jsonschema
    import yaml
    from jsonschema import Draft202012Validator
except ImportError as missing:  # reported by require_modules()
    MISSING_MODULES = missing
else:
    MISSING_MODULES = None

SPEC_PATH = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                          "..", "docs", "openapi.yaml"))
API_KEY = "contract-key"
# A key limited to docs/ (QueuedCallsTest).
SCOPED_KEY = "contract-docs-key"

# Headers any HTTP response may carry without the document naming them.
GENERIC_HEADERS = {"date", "content-type", "content-length", "connection", "keep-alive"}

# A value for each path parameter, to make a concrete path of a template.
PATH_PARAMETER_SAMPLES = {"id": "0123456789abcdef0123456789abcdef"}

# Paths the gateway must not answer (404 problems), whatever the document says.
UNDOCUMENTED_PATHS = [
    "/api/v1/files/", "/API/v1/files", "/api/v2/files", "/api/v1/File", "/api/v1",
    "/api/v1/", "/api/v1/search/", "/api/v1/operations", "/api/v1/openapi.json",
    "/api/v1/openapi.yaml/", "/api/openapi.yaml", "/openapi.yaml", "/ui", "/ui/",
    "/ui/nope.js", "/ui/app.js/", "/UI/app.js", "/ui/index.html", "/index.html",
    "/favicon.ico", "/healthz/", "/readyz/", "/metrics/", "/Healthz", "/docs/openapi.yaml",
]

# What can only be exercised with a broker (202s and the operations they
# make): excused from the coverage check when the broker part is skipped
# (not root).
BROKER_ONLY_STATUSES = {
    ("/api/v1/files", "202"), ("/api/v1/search", "202"),
    ("/api/v1/operations/{id}", "200"), ("/api/v1/operations/{id}", "403"),
    ("/api/v1/operations/{id}", "default"),
}
BROKER_ONLY_PARAMETERS = {("/api/v1/operations/{id}", "path", "id", "valid")}


def missing_modules_message():
    return ("the OpenAPI contract test needs PyYAML and jsonschema >= 4 (Debian packages "
            f"python3-yaml and python3-jsonschema): {MISSING_MODULES}")


def modules_ready():
    """True when PyYAML and jsonschema are there. Else False (a class then
    starts nothing and each test skips), or an AssertionError with CI set."""
    if MISSING_MODULES is None:
        return True
    if os.environ.get("CI"):
        raise AssertionError(missing_modules_message())
    return False


def require_modules():
    """In a test's setUp: skips it without the modules. (Skipped tests, not
    skipped classes, so that a run that skips them all exits 77.)"""
    if not modules_ready():
        raise unittest.SkipTest(missing_modules_message())


# ---------------------------------------------------------------------------
# The document


class Spec:
    """docs/openapi.yaml, with $ref resolution and cached schema validators."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.doc = yaml.safe_load(self.raw)
        self.paths = self.doc["paths"]
        self._validators = {}
        self._lock = threading.Lock()

    def resolve(self, node):
        """`node` with its `$ref` (a local JSON pointer) followed, repeatedly."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and len(node) == 1:
            ref = node["$ref"]
            assert ref.startswith("#/"), f"only local references are used: {ref}"
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            assert seen < 20, f"reference loop at {ref}"
        return node

    def validator(self, schema):
        """A Draft 2020-12 validator of `schema` whose `#/components/...`
        references resolve against the whole document."""
        key = id(schema)
        with self._lock:
            if key not in self._validators:
                root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                        "allOf": [schema], "components": self.doc["components"]}
                self._validators[key] = Draft202012Validator(
                    root, format_checker=jsonschema.FormatChecker())
            return self._validators[key]

    def errors(self, schema, instance):
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in self.validator(schema).iter_errors(instance)]

    def operations(self):
        """[(template, operation)] of every documented operation."""
        out = []
        for template, item in self.paths.items():
            for method, operation in item.items():
                if method in ("get", "put", "post", "delete", "options", "head", "patch",
                              "trace"):
                    out.append((template, operation))
        return out

    def parameters(self, template):
        return [self.resolve(p) for p in self.paths[template]["get"].get("parameters", [])]

    def responses(self, template):
        return self.paths[template]["get"]["responses"]

    def template_of(self, path):
        path = path.split("?", 1)[0]
        if path in self.paths:
            return path
        for template in self.paths:
            if "{" not in template:
                continue
            pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                              for part in re.split(r"(\{[^}/]+\})", template))
            if re.fullmatch(pattern, path):
                return template
        return None

    def concrete(self, template):
        def sample(match):
            name = match.group(1)
            assert name in PATH_PARAMETER_SAMPLES, (
                f"no sample value for path parameter {name!r}: add one to PATH_PARAMETER_SAMPLES")
            return PATH_PARAMETER_SAMPLES[name]

        return re.sub(r"\{([^}/]+)\}", sample, template)


_SPEC = None


def spec():
    global _SPEC  # pylint: disable=global-statement
    if _SPEC is None:
        _SPEC = Spec(SPEC_PATH)
    return _SPEC


def media_key(content_type):
    """A Content-Type (or media type key) in one spelling: lower case, no
    spaces around parameters."""
    return ";".join(part.strip() for part in content_type.lower().split(";"))


def query_value(schema, value):
    """A query parameter's text as the instance its schema describes
    (booleans are also written 1 and 0)."""
    if schema.get("type") == "boolean" and value in ("true", "false", "1", "0"):
        return value in ("true", "1")
    return header_value(schema, value)


def header_value(schema, value):
    """A header's text as the instance its schema describes."""
    if schema.get("type") == "integer" and re.fullmatch(r"[0-9]+", value):
        return int(value)
    return value


# ---------------------------------------------------------------------------
# What was exercised


class Coverage:
    def __init__(self):
        self.statuses = set()  # (template, response key)
        self.parameters = set()  # (template, in, name, "valid" | "invalid")
        self.ran = set()  # ids of the tests that started
        self._lock = threading.Lock()

    def status(self, template, key):
        with self._lock:
            self.statuses.add((template, key))

    def parameter(self, template, location, name, kind):
        with self._lock:
            self.parameters.add((template, location, name, kind))


COVERAGE = Coverage()


# ---------------------------------------------------------------------------
# Checks


def _request_id_sent(headers):
    for name, value in (headers or {}).items():
        if name.lower() == "x-request-id":
            return value
    return None


class ContractMixin:
    """Checks of answers against the document; records what was exercised."""

    def setUp(self):
        require_modules()
        super().setUp()
        COVERAGE.ran.add(self.id())

    def call(self, client, path, params=None, method="GET", headers=None, auth=True,
             expect=None, template=None):
        """Makes a request and checks its answer against the document."""
        r = client.request(path, params, method=method, headers=headers, auth=auth)
        self.conforms(r, path, method=method, sent_headers=headers, expect=expect,
                      template=template)
        return r

    def conforms(self, r, path, method="GET", sent_headers=None, expect=None, template=None):
        """Asserts that `r`, the answer to `method path`, is what the document
        says of that status; returns the response key ("200", "default")."""
        doc = spec()
        template = template or doc.template_of(path)
        self.assertIsNotNone(template, f"{path} is not a documented path")
        if expect is not None:
            self.assertEqual(r.status, expect, f"{method} {path}: {r!r}")
        responses = doc.responses(template)
        key = str(r.status) if str(r.status) in responses else "default"
        self.assertIn(key, responses,
                      f"{method} {path} answered {r.status}, which {template} does not document: "
                      f"{r!r}")
        self.conforms_to_response(r, doc.resolve(responses[key]), path, method, sent_headers,
                                  f"{template} {key}")
        if method == "GET":
            COVERAGE.status(template, key)
        return key

    def conforms_to_response(self, r, response, path, method, sent_headers, where,
                             also_allowed=()):
        doc = spec()
        what = f"{method} {path} ({where})"
        # Content-Type: one of the documented media types, exactly.
        content = response.get("content", {})
        by_key = {media_key(k): v for k, v in content.items()}
        got_type = media_key(r.headers.get("content-type", ""))
        self.assertIn(got_type, by_key, f"{what}: Content-Type {got_type!r} is not documented "
                                        f"({sorted(by_key)})")
        # Headers: every required one there, each valid, none undocumented.
        documented = {}
        for name, header in response.get("headers", {}).items():
            documented[name.lower()] = doc.resolve(header)
        for name, header in documented.items():
            if name not in r.headers:
                self.assertFalse(header.get("required"), f"{what}: no {name} header")
                continue
            value = header_value(header["schema"], r.headers[name])
            errors = doc.errors(header["schema"], value)
            self.assertFalse(errors, f"{what}: header {name}: {r.headers[name]!r}: {errors}")
        extra = set(r.headers) - GENERIC_HEADERS - set(documented) - set(also_allowed)
        self.assertFalse(extra, f"{what}: undocumented headers {sorted(extra)}")
        # The request id: echoed when valid, else made (32 hex digits).
        sent = _request_id_sent(sent_headers)
        got_id = r.headers.get("x-request-id", "")
        if sent is not None and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", sent):
            self.assertEqual(got_id, sent, what)
        else:
            self.assertRegex(got_id, r"^[0-9a-f]{32}$", what)
        if method == "HEAD":
            self.assertEqual(r.body, b"", f"{what}: HEAD has a body")
            return
        # The body, against the media type's schema.
        media = by_key[got_type]
        if got_type.startswith("application/") and got_type.split(";")[0].endswith("json"):
            body = r.json()
        else:
            body = r.body.decode("utf-8")
        errors = doc.errors(media.get("schema", {}), body)
        self.assertFalse(errors, f"{what}: body {r.body[:300]!r}: {errors}")
        if got_type == "application/problem+json":
            self.assertEqual(body["status"], r.status, what)
            self.assertEqual(body.get("instance"), path.split("?", 1)[0], what)
            # Retry-After goes with RESOURCE_EXHAUSTED, and only with it.
            self.assertEqual("retry-after" in r.headers, body["code"] == "RESOURCE_EXHAUSTED",
                             f"{what}: Retry-After with code {body['code']}: {r.headers}")
            if body["code"] == "RESOURCE_EXHAUSTED":
                self.assertEqual(r.headers["retry-after"], "1", what)

    def problem(self, r, status, code=None):
        """Asserts `r` is a problem with `status` (and `code`); returns it."""
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.content_type, "application/problem+json", r)
        body = r.json()
        if code is not None:
            self.assertEqual(body["code"], code, body)
        return body

    def names(self, detail, name):
        """Asserts that a problem's detail names `name`."""
        self.assertRegex(detail, r"(?<![A-Za-z0-9_])" + re.escape(name) + r"(?![A-Za-z0-9_])")


def start_service(binary_key, root, extra=(), grpc=True, amqp_url="", queue_prefix=""):
    """mserv1 or mserv2 with extra flags; waits until it listens (gRPC) and
    consumes (AMQP). The address is in `.grpc_address`."""
    listen = harness.loopback(harness.free_port()) if grpc else ""
    amqp_url = harness.broker_url_as(amqp_url, binary_key)
    argv = [harness.BINARIES[binary_key], f"--root={root}", f"--grpc_listen={listen}",
            f"--amqp_url={amqp_url}", f"--queue_prefix={queue_prefix}", "--threads=1",
            *extra]
    proc = harness.Process(binary_key, argv)
    proc.grpc_address = proc.wait_for_log("grpc_listening", 30)["address"] if grpc else None
    if amqp_url:
        proc.wait_for_log("amqp_connected", 60)
    return proc


# ---------------------------------------------------------------------------
# The document itself


class DocumentTest(ContractMixin, unittest.TestCase):
    """The description is well formed and complete on its own."""

    def test_is_openapi_3_1_with_get_operations_only(self):
        doc = spec().doc
        self.assertEqual(doc["openapi"], "3.1.0")
        for word in ("HEAD", "405", "Allow: GET, HEAD"):
            self.assertIn(word, doc["info"]["description"])
        ids = set()
        for template, item in spec().paths.items():
            self.assertEqual(set(item), {"get"}, f"{template}: only GET is documented")
            op = item["get"]
            for field in ("operationId", "summary", "description", "tags", "responses"):
                self.assertTrue(op.get(field), f"{template}: no {field}")
            self.assertNotIn(op["operationId"], ids)
            ids.add(op["operationId"])
            self.assertIn("HEAD", op["description"], template)
            self.assertIn("405", op["description"], template)
            self.assertIn("200", op["responses"], template)
            self.assertIn("400", op["responses"], template)

    def test_security_is_bearer_on_api_routes_only(self):
        for template, op in spec().operations():
            if template.startswith("/api/"):
                self.assertEqual(op.get("security"), [{"bearer": []}], template)
            else:
                self.assertEqual(op.get("security"), [], template)
        scheme = spec().doc["components"]["securitySchemes"]["bearer"]
        self.assertEqual((scheme["type"], scheme["scheme"]), ("http", "bearer"))

    def test_every_response_documents_the_common_headers(self):
        for template, op in spec().operations():
            for key, response in op["responses"].items():
                headers = {name.lower() for name in spec().resolve(response).get("headers", {})}
                for name in ("x-request-id", "content-security-policy", "x-content-type-options",
                             "referrer-policy"):
                    self.assertIn(name, headers, f"{template} {key}")

    def test_schemas_are_valid_json_schema(self):
        doc = spec().doc
        schemas = list(doc["components"]["schemas"].values())
        schemas += [h["schema"] for h in doc["components"]["headers"].values()]
        for template in spec().paths:
            schemas += [p["schema"] for p in spec().parameters(template)]
            for response in spec().responses(template).values():
                for media in spec().resolve(response).get("content", {}).values():
                    schemas.append(media["schema"])
        for schema in schemas:
            Draft202012Validator.check_schema(schema)
            spec().validator(schema)

    def test_examples_match_their_schemas(self):
        doc = spec()
        checked = 0
        responses = list(doc.doc["components"]["responses"].values())
        for template in doc.paths:
            responses += list(doc.responses(template).values())
        for response in responses:
            for media_type, media in doc.resolve(response).get("content", {}).items():
                examples = [e["value"] for e in media.get("examples", {}).values()]
                if "example" in media:
                    examples.append(media["example"])
                for example in examples:
                    self.assertFalse(doc.errors(media["schema"], example), (media_type, example))
                    checked += 1
        for header in doc.doc["components"]["headers"].values():
            if "example" in header:
                value = header["example"]
                self.assertFalse(doc.errors(header["schema"], value), header)
        for parameter in doc.doc["components"]["parameters"].values():
            if "example" in parameter:
                self.assertFalse(doc.errors(parameter["schema"], parameter["example"]), parameter)
        self.assertGreater(checked, 10)


# ---------------------------------------------------------------------------
# A healthy gateway with an API key


class LiveGatewayTest(ContractMixin, harness.ProcessTestCase):
    """The gateway with an API key in front of mserv1 and mserv2 on gRPC."""

    @classmethod
    def setUpClass(cls):
        if not modules_ready():
            return
        cls.tree = harness.SampleTree()
        cls.addClassCleanup(cls.tree.close)
        cls.lister = harness.start_mserv("mserv1", cls.tree.root, grpc_listen="127.0.0.1:0")
        cls.addClassCleanup(cls.lister.close)
        cls.searcher = harness.start_mserv("mserv2", cls.tree.root, grpc_listen="127.0.0.1:0")
        cls.addClassCleanup(cls.searcher.close)
        cls.gw = harness.start_gateway(lister_grpc=cls.lister.grpc_address,
                                       searcher_grpc=cls.searcher.grpc_address, api_key=API_KEY)
        cls.addClassCleanup(cls.gw.close)
        cls.http = cls.gw.http

    # -- each route's own statuses ------------------------------------------

    def test_openapi_yaml_is_the_document_byte_for_byte(self):
        r = self.call(self.http, "/api/v1/openapi.yaml", expect=200)
        self.assertEqual(r.body, spec().raw)
        self.call(self.http, "/api/v1/openapi.yaml", auth=False, expect=401)

    def test_files(self):
        body = self.call(self.http, "/api/v1/files", expect=200).json()
        self.assertEqual([harness.exact_name(e) for e in body["entries"]],
                         [name for name, _, _ in self.tree.listing(b"")])
        latin1 = [e for e in body["entries"] if harness.exact_name(e) == b"r\xe9sum\xe9.txt"]
        self.assertEqual(latin1[0]["name"], "r\\xe9sum\\xe9.txt")
        self.assertEqual(base64.b64decode(latin1[0]["raw_name"]), b"r\xe9sum\xe9.txt")
        inside = self.call(self.http, "/api/v1/files", {"path": b"caf\xff"}, expect=200).json()
        self.assertEqual([harness.exact_path(e) for e in inside["entries"]], [b"caf\xff/menu.md"])
        self.call(self.http, "/api/v1/files", {"path": "README.md"}, expect=400)
        self.call(self.http, "/api/v1/files", {"path": "outside"}, expect=403)
        self.call(self.http, "/api/v1/files", {"path": "nowhere"}, expect=404)
        self.call(self.http, "/api/v1/files", auth=False, expect=401)

    def test_search(self):
        body = self.call(self.http, "/api/v1/search", {"q": "*.md"}, expect=200).json()
        self.assertEqual(body["served_by"], "grpc")
        self.assertTrue(body["matches"])
        cut = self.call(self.http, "/api/v1/search", {"q": "*", "max_results": "1"},
                        expect=200).json()
        self.assertEqual((cut["truncated"], cut["truncation_reason"]),
                         (True, "TRUNCATION_REASON_MAX_RESULTS"))
        self.call(self.http, "/api/v1/search", {"q": "*", "path": "README.md"}, expect=400)
        self.call(self.http, "/api/v1/search", {"q": "*", "min_size": "10", "max_size": "5"},
                  expect=400)
        self.call(self.http, "/api/v1/search", {"q": "(", "syntax": "regex"}, expect=400)
        self.call(self.http, "/api/v1/search", {"q": "*", "path": "outside"}, expect=403)
        self.call(self.http, "/api/v1/search", {"q": "*", "path": "nowhere"}, expect=404)
        self.call(self.http, "/api/v1/search", {"q": "*"}, auth=False, expect=401)

    def test_operations_without_a_queued_call(self):
        unknown = spec().concrete("/api/v1/operations/{id}")
        self.call(self.http, unknown, expect=404)
        self.call(self.http, unknown, {"wait": "1"}, expect=400)
        self.call(self.http, unknown, auth=False, expect=401)

    def test_probes_are_open(self):
        for path in ("/healthz", "/readyz", "/metrics"):
            with self.subTest(path=path):
                self.call(self.http, path, auth=False, expect=200)
        self.assertEqual(self.http.get("/healthz").json(), {"status": "ok"})
        ready = self.call(self.http, "/readyz", expect=200).json()
        self.assertEqual(ready["backends"]["lister"]["grpc"]["available"], True)
        metrics = self.call(self.http, "/metrics", expect=200).body.decode()
        self.assertIn("# TYPE filemesh_http_requests_total counter", metrics)

    def test_page_and_its_files_are_open(self):
        for path in ("/", "/ui/app.js", "/ui/style.css", "/ui/icon.svg"):
            with self.subTest(path=path):
                self.call(self.http, path, auth=False, expect=200)
        page = self.http.get("/", auth=False).body.decode()
        for asset in ("/ui/app.js", "/ui/style.css", "/ui/icon.svg"):
            self.assertIn(asset, page)

    def test_security_is_as_documented(self):
        for template, op in spec().operations():
            path = spec().concrete(template)
            params = {"q": "*"} if template == "/api/v1/search" else None
            with self.subTest(path=template):
                r = self.http.request(path, params, auth=False)
                if op["security"]:
                    self.conforms(r, path, expect=401)
                    wrong = self.http.request(path, params, auth=False,
                                              headers={"Authorization": "Bearer not-the-key"})
                    self.conforms(wrong, path, expect=401)
                    lower = self.http.request(path, params, auth=False,
                                              headers={"authorization": f"bearer {API_KEY}"})
                    self.assertNotEqual(lower.status, 401, lower)
                else:
                    self.assertNotEqual(r.status, 401, r)

    def test_other_hosts_are_421(self):
        # DNS rebinding: a page whose domain now points at the gateway sends
        # its own name as Host.
        for template, _ in spec().operations():
            if "421" not in spec().responses(template):
                continue
            path = spec().concrete(template)
            params = {"q": "*"} if template == "/api/v1/search" else None
            with self.subTest(path=template):
                self.call(self.http, path, params, headers={"Host": "rebound.example:8080"},
                          expect=421)

    # -- parameters ---------------------------------------------------------

    def test_each_route_accepts_exactly_the_documented_query_parameters(self):
        for template in spec().paths:
            path = spec().concrete(template)
            documented = [p["name"] for p in spec().parameters(template) if p["in"] == "query"]
            with self.subTest(path=template):
                r = self.call(self.http, path, {"colour": "red"}, expect=400)
                detail = r.json()["detail"]
                self.names(detail, "colour")
                if documented:
                    self.assertIn("accepted: ", detail)
                    accepted = detail.split("accepted: ", 1)[1].split(", ")
                    self.assertEqual(sorted(accepted), sorted(documented), detail)
                    name = documented[0]
                    value = "*" if name == "q" else "1"
                    r = self.call(self.http, f"{path}?{name}={value}&{name}={value}", expect=400)
                    self.names(r.json()["detail"], name)
                else:
                    self.assertIn("takes no parameters", detail)

    def values_of(self, template, parameter):
        """(valid, invalid) values of a query parameter: from its schema, and
        the ones only this test knows."""
        schema = parameter["schema"]
        name = parameter["name"]
        resolved = spec().resolve(schema)
        valid, invalid = [], []
        kind = resolved.get("type")
        if "enum" in resolved:
            valid += list(resolved["enum"])
            invalid += ["nope", str(resolved["enum"][0]).upper(), ""]
        elif kind == "boolean":
            valid += ["true", "false", "1", "0"]
            invalid += ["yes", "TRUE", ""]
        elif kind == "integer":
            low, high = resolved["minimum"], resolved["maximum"]
            valid += [str(low), str(high)]
            invalid += [str(low - 1) if low > 0 else "-1", str(high + 1), "ten", "+5", " 5",
                        "0x10", ""]
        first_page = self.http.get("/api/v1/files", {"page_size": "2"}).json()
        token = first_page["next_page_token"]
        self.assertTrue(token)
        known = {
            ("/api/v1/files", "path"): (["docs", "", ".", b"caf\xff"], ["../..", "/etc"]),
            ("/api/v1/files", "page_token"): ([token, ""], ["not-a-token", b"\xff"]),
            ("/api/v1/search", "q"): (["*.md", "docs/**/*.md"], ["", b"\xff"]),
            ("/api/v1/search", "path"): (["docs", "", b"caf\xff"], ["../x", "/etc"]),
            ("/api/v1/search", "min_size"): (["0", "30", "18446744073709551615"],
                                             ["-1", "18446744073709551616", "1e3", " 5", ""]),
            ("/api/v1/search", "max_size"): (["0", "2048", "18446744073709551615"],
                                             ["-1", "18446744073709551616", "0x10", ""]),
        }
        more_valid, more_invalid = known.get((template, name), ([], []))
        valid += more_valid
        invalid += more_invalid
        self.assertTrue(valid and invalid,
                        f"no valid or invalid values for {template} {name}: add them here")
        return valid, invalid

    def test_query_parameters_valid_and_invalid(self):
        for template in spec().paths:
            for parameter in spec().parameters(template):
                if parameter["in"] != "query":
                    continue
                name = parameter["name"]
                # A pattern valid in every syntax.
                base = {"q": "md"} if template == "/api/v1/search" and name != "q" else {}
                valid, invalid = self.values_of(template, parameter)
                for value in valid:
                    with self.subTest(path=template, parameter=name, value=value):
                        if isinstance(value, str):  # bytes: a path that is not UTF-8
                            instance = query_value(spec().resolve(parameter["schema"]), value)
                            self.assertFalse(spec().errors(parameter["schema"], instance))
                        self.call(self.http, template, {**base, name: value}, expect=200)
                        COVERAGE.parameter(template, "query", name, "valid")
                for value in invalid:
                    with self.subTest(path=template, parameter=name, value=value):
                        r = self.call(self.http, template, {**base, name: value}, expect=400)
                        self.names(r.json()["detail"], name)
                        COVERAGE.parameter(template, "query", name, "invalid")
                if parameter.get("required"):
                    with self.subTest(path=template, parameter=name, value="(absent)"):
                        r = self.call(self.http, template, base, expect=400)
                        self.names(r.json()["detail"], name)

    def test_defaults_are_the_documented_ones(self):
        for template in spec().paths:
            for parameter in spec().parameters(template):
                schema = spec().resolve(parameter["schema"])
                if "default" not in schema:
                    continue
                name = parameter["name"]
                base = {"q": "*"} if template == "/api/v1/search" else {}
                default = schema["default"]
                text = ("true" if default else "false") if isinstance(default, bool) else str(
                    default)
                with self.subTest(path=template, parameter=name, default=text):
                    implicit = self.call(self.http, template, base, expect=200).json()
                    explicit = self.call(self.http, template, {**base, name: text},
                                         expect=200).json()
                    self.assertEqual(explicit, implicit)

    def test_request_id_header_on_every_route(self):
        good = ["contract-1.a:b_c", "x" * 128, "Z"]
        bad = ["has space", "x" * 129, "", "caf\u00e9".encode().decode("latin-1"), "a/b"]
        for template in spec().paths:
            ids = [p for p in spec().parameters(template)
                   if p["in"] == "header" and p["name"] == "X-Request-Id"]
            self.assertEqual(len(ids), 1, template)
            path = spec().concrete(template)
            params = {"q": "*"} if template == "/api/v1/search" else None
            # An unknown operation is 404 whatever the request id.
            expected = 404 if "{" in template else 200
            for value in good:
                with self.subTest(path=template, request_id=value):
                    self.call(self.http, path, params, headers={"X-Request-Id": value},
                              expect=expected)
                    COVERAGE.parameter(template, "header", "X-Request-Id", "valid")
            for value in bad:
                with self.subTest(path=template, request_id=value):
                    r = self.call(self.http, path, params, headers={"X-Request-Id": value},
                                  expect=400)
                    self.names(r.json()["detail"], "X-Request-Id")
                    COVERAGE.parameter(template, "header", "X-Request-Id", "invalid")

    def test_malformed_operation_ids_are_404(self):
        id_schema = [p["schema"] for p in spec().parameters("/api/v1/operations/{id}")
                     if p["in"] == "path" and p["name"] == "id"][0]
        for value in ("xyz", "0123456789ABCDEF0123456789ABCDEF", "0" * 31, "0" * 33):
            with self.subTest(id=value):
                r = self.call(self.http, f"/api/v1/operations/{value}", expect=404)
                self.assertIn(value, r.json()["detail"])
                self.assertTrue(spec().errors(id_schema, value), value)
        COVERAGE.parameter("/api/v1/operations/{id}", "path", "id", "invalid")

    # -- methods and paths --------------------------------------------------

    def test_head_answers_like_get_without_a_body(self):
        for template in spec().paths:
            path = spec().concrete(template)
            params = {"q": "*"} if template == "/api/v1/search" else None
            with self.subTest(path=template):
                got = self.http.request(path, params)
                head = self.http.request(path, params, method="HEAD")
                self.conforms(got, path)
                self.conforms(head, path, method="HEAD")
                self.assertEqual(head.status, got.status)
                self.assertEqual(head.body, b"")
                self.assertEqual(set(head.headers), set(got.headers))
                for name in set(got.headers) - {"date", "x-request-id", "content-length"}:
                    self.assertEqual(head.headers[name], got.headers[name], name)
                if template != "/metrics":  # its counters move between the two
                    self.assertEqual(head.headers.get("content-length"),
                                     str(len(got.body)))

    def test_other_methods_are_405_with_allow(self):
        not_allowed = spec().doc["components"]["responses"]["OtherProblem"]
        for template in spec().paths:
            path = spec().concrete(template)
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                with self.subTest(path=template, method=method):
                    r = self.http.request(path, method=method)
                    body = self.problem(r, 405, "UNIMPLEMENTED")
                    self.assertEqual(r.headers.get("allow"), "GET, HEAD", r.headers)
                    self.assertEqual(body["title"], "Method Not Allowed")
                    self.conforms_to_response(r, not_allowed, path, method, None, "405",
                                              also_allowed=("allow",))

    def test_undocumented_paths_are_404(self):
        not_found = spec().doc["components"]["responses"]["NotFound"]
        for path in UNDOCUMENTED_PATHS:
            self.assertIsNone(spec().template_of(path), path)
            with self.subTest(path=path):
                r = self.http.request(path)
                self.problem(r, 404, "NOT_FOUND")
                self.conforms_to_response(r, not_found, path, "GET", None, "undocumented")
                if path.startswith("/api/"):
                    # Authentication comes before the route.
                    self.problem(self.http.request(path, auth=False), 401, "UNAUTHENTICATED")

    def test_documented_paths_are_routes(self):
        for template in spec().paths:
            path = spec().concrete(template)
            with self.subTest(path=template):
                r = self.http.request(path, {"q": "*"} if template == "/api/v1/search" else None)
                if r.status == 404:
                    self.assertFalse(r.json()["detail"].startswith("no route"), r)


# ---------------------------------------------------------------------------
# Gateways whose backends fail


class FailingBackendsTest(ContractMixin, harness.ProcessTestCase):
    """503, 504 and the rarer statuses, each from a real cause:
    services that take requests of at most 4 KiB and have 1 ns per call, a
    lister address that points at the searcher (and the reverse), a backend
    that is not configured, and one that nothing listens for."""

    @classmethod
    def setUpClass(cls):
        if not modules_ready():
            return
        cls.tree = harness.SampleTree()
        cls.addClassCleanup(cls.tree.close)
        tight = ("--max_request_bytes=4096", "--max_call_time=1ns")
        started = {}
        for key in ("mserv1", "mserv2"):
            started[key] = start_service(key, cls.tree.root)
            cls.addClassCleanup(started[key].close)
            started["tight_" + key] = start_service(key, cls.tree.root, extra=tight)
            cls.addClassCleanup(started["tight_" + key].close)
        # Each gateway has one backend: the other route is "not configured".
        cls.lister_only = harness.start_gateway(
            lister_grpc=started["tight_mserv1"].grpc_address, name="gateway-lister-only")
        cls.addClassCleanup(cls.lister_only.close)
        cls.searcher_only = harness.start_gateway(
            searcher_grpc=started["tight_mserv2"].grpc_address, name="gateway-searcher-only")
        cls.addClassCleanup(cls.searcher_only.close)
        cls.crossed = harness.start_gateway(lister_grpc=started["mserv2"].grpc_address,
                                            searcher_grpc=started["mserv1"].grpc_address,
                                            name="gateway-crossed")
        cls.addClassCleanup(cls.crossed.close)
        cls.working_lister = started["mserv1"]

    def test_backend_not_configured_is_503_without_retry_after(self):
        r = self.call(self.lister_only.http, "/api/v1/search", {"q": "*"}, expect=503)
        self.assertEqual(r.json()["detail"], "no searcher configured")
        r = self.call(self.searcher_only.http, "/api/v1/files", expect=503)
        self.assertEqual(r.json()["detail"], "no lister configured")
        self.assertNotIn("retry-after", r.headers)

    def test_service_at_its_limit_is_503_with_retry_after(self):
        big = "a" * 5000  # over the services' 4 KiB requests
        r = self.call(self.lister_only.http, "/api/v1/files", {"path": big}, expect=503)
        self.assertEqual(r.json()["code"], "RESOURCE_EXHAUSTED")
        r = self.call(self.searcher_only.http, "/api/v1/search", {"q": big}, expect=503)
        self.assertEqual(r.json()["code"], "RESOURCE_EXHAUSTED")

    def test_deadline_passed_is_504(self):
        self.call(self.lister_only.http, "/api/v1/files", expect=504)
        self.call(self.searcher_only.http, "/api/v1/search", {"q": "*"}, expect=504)

    def test_service_that_does_not_serve_the_call_is_a_default_problem(self):
        for path, params in (("/api/v1/files", None), ("/api/v1/search", {"q": "*"})):
            with self.subTest(path=path):
                r = self.crossed.http.get(path, params)
                self.assertEqual(self.conforms(r, path, expect=501), "default")
                self.assertEqual(r.json()["code"], "UNIMPLEMENTED")

    def test_unreachable_backend_is_503_and_not_ready(self):
        dead = harness.loopback(harness.free_port())
        gw = self.gateway(lister_grpc=dead, name="gateway-dead")
        harness.wait_until(lambda: gw.http.get("/readyz").status == 503, 10, "/readyz 503")
        body = self.call(gw.http, "/readyz", expect=503).json()
        self.assertEqual(body["status"], "unavailable")
        self.assertEqual(body["missing"], ["lister", "searcher"])
        # Started without a searcher: said at start, not only in each 503.
        self.assertEqual(len(gw.events("backend_missing", backend="searcher", answer="503")), 1)
        self.assertEqual(gw.events("backend_missing", backend="lister"), [])
        r = self.call(gw.http, "/api/v1/files", expect=503)
        self.assertEqual(r.json()["code"], "UNAVAILABLE")
        self.call(gw.http, "/healthz", expect=200)

    def test_page_off_is_404_and_the_document_stays(self):
        gw = self.gateway(lister_grpc=self.working_lister.grpc_address, extra=("--noui",),
                          name="gateway-noui")
        for path in ("/", "/ui/app.js", "/ui/style.css", "/ui/icon.svg"):
            with self.subTest(path=path):
                self.call(gw.http, path, expect=404)
        r = self.call(gw.http, "/api/v1/openapi.yaml", expect=200)
        self.assertEqual(r.body, spec().raw)


# ---------------------------------------------------------------------------
# Queued calls (a private broker; root only)


class QueuedCallsTest(ContractMixin, harness.BrokerTestCase):
    """Every replica down, the broker up: 202, then the operation."""

    @classmethod
    def setUpClass(cls):
        if modules_ready():
            super().setUpClass()

    def test_202_and_every_operation_status(self):
        dead = harness.loopback(harness.free_port())
        state = tempfile.mkdtemp(prefix="filemesh-contract-")
        self.addCleanup(shutil.rmtree, state, True)
        database = os.path.join(state, "operations.db")
        keys = os.path.join(state, "keys")
        with open(keys, "w", encoding="ascii") as f:
            f.write(f"docs-reader {hashlib.sha256(SCOPED_KEY.encode()).hexdigest()} docs\n")
        gw = self.gateway(lister_grpc=dead, searcher_grpc=dead, amqp_url=self.amqp_url,
                          queue_prefix=self.prefix, request_timeout="1s", api_key=API_KEY,
                          extra=(f"--operations_db={database}", f"--api_keys_file={keys}"))

        def broker_connected():
            backends = gw.http.get("/readyz").json()["backends"]
            return all(backends[b]["broker"]["connected"] for b in ("lister", "searcher"))

        harness.wait_until(broker_connected, 30, "the gateway's broker connection")
        calls = {
            "search": ("/api/v1/search", {"q": "*.md"}),
            "listing": ("/api/v1/files", {"path": "docs"}),
            "not_a_directory": ("/api/v1/search", {"q": "*", "path": "README.md"}),
            "outside": ("/api/v1/search", {"q": "*", "path": "outside"}),
            # Over the lister's 4 KiB messages: RESOURCE_EXHAUSTED.
            "too_big": ("/api/v1/files", {"path": "a" * 5000}),
        }
        answers = {}

        def queue(name, path, params):
            answers[name] = gw.http.get(path, params)

        threads = [threading.Thread(target=queue, args=(name, *call))
                   for name, call in calls.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        operations = {}
        for name, (path, _) in calls.items():
            r = answers[name]
            self.conforms(r, path, expect=202)
            self.assertEqual(r.json()["operation"], r.headers["location"])
            self.assertIs(r.json()["done"], False)
            operations[name] = r.headers["location"]
        self.assertEqual(len(set(operations.values())), len(calls))

        pending = self.call(gw.http, operations["search"], headers={"X-Request-Id": "op-1"},
                            expect=200)
        self.assertIs(pending.json()["done"], False)
        COVERAGE.parameter("/api/v1/operations/{id}", "path", "id", "valid")
        self.call(gw.http, operations["search"], auth=False, expect=401)
        # A key limited to docs/ reads no operation of the whole tree's.
        self.call(gw.http, operations["search"], auth=False, expect=403,
                  headers={"authorization": f"bearer {SCOPED_KEY}"})

        self.spawn(start_service("mserv2", self.tree.root, grpc=False, amqp_url=self.amqp_url,
                                 queue_prefix=self.prefix))
        self.spawn(start_service("mserv1", self.tree.root, grpc=False, amqp_url=self.amqp_url,
                                 queue_prefix=self.prefix, extra=("--max_request_bytes=4096",)))

        def finished(operation):
            def done():
                r = gw.http.get(operation)
                return r if r.status != 200 or r.json()["done"] else None

            return harness.wait_until(done, 30, f"{operation} to finish")

        # Every operation is found (200); a failed call's status is its
        # `error` (AIP-151).
        expected = {"search": None, "listing": None, "not_a_directory": "FAILED_PRECONDITION",
                    "outside": "PERMISSION_DENIED", "too_big": "RESOURCE_EXHAUSTED"}
        for name, error in expected.items():
            with self.subTest(call=name):
                r = finished(operations[name])
                self.conforms(r, operations[name], expect=200)
                self.assertEqual(r.json().get("error", {}).get("status"), error, r.json())
                again = self.call(gw.http, operations[name], expect=200)
                self.assertEqual(again.body, r.body, "a finished answer is kept")
        searched = gw.http.get(operations["search"]).json()
        self.assertEqual(searched["served_by"], "amqp")
        self.assertIn("matches", searched["response"])
        listed = gw.http.get(operations["listing"]).json()
        self.assertEqual([harness.exact_path(e) for e in listed["response"]["entries"]],
                         [b"docs/" + name for name, _, _ in self.tree.listing(b"docs")])
        head = gw.http.request(operations["search"], method="HEAD")
        self.conforms(head, operations["search"], method="HEAD", expect=200)

        # The operations database failing under the gateway (its table
        # dropped by another program): a 503 problem, the `default` answer.
        with sqlite3.connect(database) as other:
            other.execute("DROP TABLE operations")
        failed = self.call(gw.http, operations["search"], expect=503)
        self.assertIn("cannot read its operations", failed.json()["detail"])


# ---------------------------------------------------------------------------
# Everything documented was exercised


CONTRACT_CLASSES = (DocumentTest, LiveGatewayTest, FailingBackendsTest, QueuedCallsTest)


class CoverageTest(unittest.TestCase):
    """Runs last: every documented status and parameter was exercised."""

    def setUp(self):
        require_modules()

    def excused(self):
        """What may be missing, or None when part of the scenario was left
        out on purpose (a test name filter): then nothing can be said."""
        loader = unittest.TestLoader()
        wanted = {f"{cls.__module__}.{cls.__qualname__}.{name}"
                  for cls in CONTRACT_CLASSES for name in loader.getTestCaseNames(cls)}
        missing = wanted - COVERAGE.ran
        broker = {t for t in wanted if ".QueuedCallsTest." in t}
        if not missing:
            return set(), set()
        if missing <= broker and not harness.running_as_root():
            print("coverage: the broker part was skipped (not root); its statuses are excused")
            return BROKER_ONLY_STATUSES, BROKER_ONLY_PARAMETERS
        return None

    def test_every_documented_status_was_exercised(self):
        excused = self.excused()
        if excused is None:
            self.skipTest("only part of the scenario ran")
        documented = {(template, key) for template in spec().paths
                      for key in spec().responses(template)}
        missing = documented - COVERAGE.statuses - excused[0]
        self.assertFalse(missing, f"documented but never exercised: {sorted(missing)}")

    def test_every_documented_parameter_was_exercised(self):
        excused = self.excused()
        if excused is None:
            self.skipTest("only part of the scenario ran")
        documented = {(template, p["in"], p["name"], kind) for template in spec().paths
                      for p in spec().parameters(template) for kind in ("valid", "invalid")}
        missing = documented - COVERAGE.parameters - excused[1]
        self.assertFalse(missing, f"documented but never exercised: {sorted(missing)}")


def load_tests(loader, _standard_tests, _pattern):
    """The scenario's classes in order, the coverage check last."""
    suite = unittest.TestSuite()
    for cls in CONTRACT_CLASSES + (CoverageTest,):
        suite.addTests(loader.loadTestsFromTestCase(cls))
    return suite


if __name__ == "__main__":
    harness.main()
