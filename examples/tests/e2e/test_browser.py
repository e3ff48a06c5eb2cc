"""The gateway's browser page in a real browser: Debian's chromium, headless,
driven through chromium-driver by Selenium (Debian's python3-selenium).

Against real processes: a private RabbitMQ node, mserv1 replica A (gRPC only)
and replica B (the AMQP queue only), mserv2 (both), and the gateway, on a
sample tree with a 250-entry folder, a file named like an HTML tag and names
that are not UTF-8. A person's session: browse two levels and back, sort by
size, page through 250 entries, search by glob and by regex (by keyboard),
see a truncated search, a 404 for a folder that vanished, the hostile name
as text with no dialog, the API key asked for, a queued (202) listing that
completes, and `served by amqp` once replica A is killed.

After every test: no console message from the page (the only ones allowed
are Chromium's own lines for the HTTP errors a test provoked on purpose) and
no request that failed at the network level. Screenshots of a listing, a
search and the 400 px layout are saved in $FILEMESH_BROWSER_ARTIFACTS
(ctest sets build/examples/browser).
"""

import json
import os
import shutil
import tempfile
import time

import harness

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20  # seconds for one page load to finish, at most

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    MISSING = None
except ImportError as e:  # pragma: no cover - depends on the machine
    MISSING = f"python3-selenium is not installed ({e})"
if MISSING is None:
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            MISSING = f"{tool} is missing (Debian packages chromium, chromium-driver)"

HOSTILE = "<img src=x onerror=alert(1)>.txt"
MANY = 250


def make_browser(user_data_dir):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # No sandbox as root; no background traffic to hosts this machine cannot
    # reach; a fresh profile.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1280,900", f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


class BrowserTest(harness.ProcessTestCase):
    """One broker, one set of services and one browser for the class; each
    test starts from a fresh page load."""

    @classmethod
    def setUpClass(cls):
        if MISSING:
            if os.environ.get("CI"):
                raise RuntimeError(MISSING)
            raise harness.unittest.SkipTest(MISSING)
        if not harness.running_as_root():
            raise harness.unittest.SkipTest("a private RabbitMQ node needs root")
        cls.artifacts = os.environ.get("FILEMESH_BROWSER_ARTIFACTS") or tempfile.mkdtemp(
            prefix="filemesh-browser-")
        os.makedirs(cls.artifacts, exist_ok=True)
        cls.broker = harness.Broker()
        cls.addClassCleanup(cls.broker.close)
        cls.amqp_url = cls.broker.start()
        cls.prefix = "e2e.browser."

        cls.tree = harness.SampleTree()
        cls.addClassCleanup(cls.tree.close)
        many = cls.tree.path(b"many")
        os.mkdir(many, 0o755)
        for i in range(MANY):
            with open(os.path.join(many, b"file-%03d.txt" % i), "wb") as f:
                f.write(b"x" * ((i * 37) % 1000))
        with open(cls.tree.path(os.fsencode(HOSTILE)), "wb") as f:
            f.write(b"<script>alert(2)</script>")

        def start(proc):
            cls.addClassCleanup(proc.close)
            return proc

        grpc_port = harness.free_ports(2)
        search_port = grpc_port + 1
        cls.replica_a = start(harness.start_mserv(
            "mserv1", cls.tree.root, name="mserv1-A", grpc_listen=harness.loopback(grpc_port)))
        start(harness.start_mserv("mserv1", cls.tree.root, name="mserv1-B",
                                  amqp_url=cls.amqp_url, queue_prefix=cls.prefix))
        start(harness.start_mserv("mserv2", cls.tree.root, grpc_listen=harness.loopback(
            search_port), amqp_url=cls.amqp_url, queue_prefix=cls.prefix))
        cls.gw = start(harness.start_gateway(
            lister_grpc=harness.loopback(grpc_port), searcher_grpc=harness.loopback(search_port),
            amqp_url=cls.amqp_url, queue_prefix=cls.prefix, breaker_cooldown="1s"))
        cls.base = f"http://{cls.gw.http.host}:{cls.gw.http.port}"

        profile = tempfile.mkdtemp(prefix="filemesh-chromium-")
        cls.addClassCleanup(shutil.rmtree, profile, True)
        cls.driver = make_browser(profile)
        cls.addClassCleanup(cls.driver.quit)
        # Whatever Chromium opened at start ends here, before the first test.
        cls.driver.get("about:blank")

    def setUp(self):
        self.expected_errors = []  # (url part, status) a test provokes on purpose
        self.drain_logs()
        self.addCleanup(self.check_logs)

    # ------------------------------------------------------------ logs

    def drain_logs(self):
        self.driver.get_log("browser")
        self.driver.get_log("performance")

    def check_logs(self):
        """No console message but the expected HTTP errors, no failed request."""
        unexpected = []
        for entry in self.driver.get_log("browser"):
            message = entry.get("message", "")
            allowed = entry.get("source") == "network" and any(
                part in message and f"status of {status}" in message
                for part, status in self.expected_errors)
            if not allowed:
                unexpected.append(f"{entry.get('level')} {entry.get('source')}: {message}")
        # A failed request counts when the page made it (its document is the
        # gateway's) or when it cannot be told apart. Chromium's own pages
        # (the new-tab page it may open at start) fetch from hosts CI cannot
        # resolve; their failures are not the page's.
        failed = []
        sent = {}  # request id -> (url, document url)
        for entry in self.driver.get_log("performance"):
            event = json.loads(entry["message"])["message"]
            params = event.get("params", {})
            if event.get("method") == "Network.requestWillBeSent":
                sent[params.get("requestId")] = (params.get("request", {}).get("url", ""),
                                                  params.get("documentURL", ""))
            elif event.get("method") == "Network.loadingFailed":
                url, document = sent.get(params.get("requestId"), ("?", "?"))
                if document.startswith("chrome://") and not url.startswith(self.base):
                    continue
                failed.append(f"{url} from {document}: {params.get('errorText')} "
                              f"{params.get('blockedReason', '')}".rstrip())
        self.assertEqual(unexpected, [], "console messages")
        self.assertEqual(failed, [], "failed requests")
        self.assertFalse(self.alert_present(), "a dialog opened")

    def alert_present(self):
        try:
            self.driver.switch_to.alert  # pylint: disable=pointless-statement
            return True
        except NoAlertPresentException:
            return False

    # ------------------------------------------------------------ the page

    def loads(self):
        return int(self.driver.execute_script("return document.body.dataset.loads || '0'"))

    def after(self, action, outcome="ready"):
        """Runs `action` (which starts a load) and waits for that load to end
        as `outcome` ("ready", "error", "key")."""
        before = self.loads()
        action()
        WebDriverWait(self.driver, WAIT).until(lambda d: self.loads() > before)
        state = self.driver.execute_script("return document.body.dataset.state")
        self.assertEqual(state, outcome, self.problem_text())

    def after_reload(self, action, outcome="ready"):
        """As after(), for an action that loads the document anew (its load
        count starts from 0 again)."""
        self.driver.execute_script("window.filemeshOldDocument = true")
        action()
        WebDriverWait(self.driver, WAIT).until(lambda d: d.execute_script(
            "return !window.filemeshOldDocument && Number(document.body.dataset.loads || 0) > 0"))
        state = self.driver.execute_script("return document.body.dataset.state")
        self.assertEqual(state, outcome, self.problem_text())

    def open(self, fragment="", outcome="ready"):
        url = self.base + "/" + fragment
        self.driver.get("about:blank")
        self.driver.get(url)
        WebDriverWait(self.driver, WAIT).until(lambda d: self.loads() > 0)
        self.assertEqual(self.driver.execute_script("return document.body.dataset.state"),
                         outcome, self.problem_text())

    def problem_text(self):
        try:
            return self.driver.find_element(By.ID, "problem").text
        except Exception:  # pylint: disable=broad-except
            return ""

    def rows(self, table="listing"):
        return self.driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[data-type]")

    def names(self):
        return [row.get_attribute("data-name") for row in self.rows()]

    def shown_names(self):
        """The name column as a person sees it (a directory ends with /)."""
        return [row.find_element(By.CSS_SELECTOR, "td.name").text for row in self.rows()]

    def served_by(self):
        return self.driver.find_element(By.ID, "served-by").get_attribute("data-served-by")

    def click_link(self, text):
        self.after(lambda: self.driver.find_element(By.LINK_TEXT, text).click())

    def api(self, route, **params):
        response = self.gw.http.get(route, params)
        self.assertEqual(response.status, 200, response)
        return response.json()

    def expected_names(self, rel, **params):
        entries = self.api("/api/v1/files", path=rel, page_size=1000, **params)["entries"]
        return [e["name"] for e in entries]

    def screenshot(self, name):
        path = os.path.join(self.artifacts, name)
        self.assertTrue(self.driver.save_screenshot(path), path)
        print(f"\nscreenshot: {path}")

    # ------------------------------------------------------------ tests

    def test_1_browse_two_levels_and_back(self):
        self.open()
        on_disk = [harness.display_form(name) for name, _, _ in self.tree.listing()]
        self.assertEqual(self.names(), on_disk)
        self.assertEqual(self.served_by(), "grpc")
        self.assertIn("served by grpc", self.driver.find_element(By.ID, "served-by").text)
        self.assertIn("docs/", self.shown_names())
        self.screenshot("listing.png")

        self.click_link("docs/")
        self.assertEqual(self.names(), [harness.display_form(n) for n, _, _ in
                                        self.tree.listing(b"docs")])
        self.assertEqual(self.driver.find_element(By.ID, "crumbs").text.split(), ["root", "/",
                                                                                  "docs"])
        self.click_link("sub/")
        self.assertEqual(self.names(), ["deep.md"])
        self.assertIn("path=docs/sub", self.driver.current_url)

        self.after(self.driver.back)
        self.assertIn("sub", self.names())
        self.after(self.driver.back)
        self.assertEqual(self.names(), on_disk)
        self.after(self.driver.forward)
        self.assertIn("sub", self.names())
        # The breadcrumb goes back up; a shared link opens where it points.
        self.click_link("root")
        self.assertEqual(self.names(), on_disk)
        self.open("#/files?path=docs/sub")
        self.assertEqual(self.names(), ["deep.md"])

    def test_2_sort_by_size_and_modified(self):
        self.open("#/files?path=docs")
        header = self.driver.find_element(By.CSS_SELECTOR, "th[data-field=size]")
        self.after(lambda: header.find_element(By.TAG_NAME, "button").click())
        self.assertEqual(self.names(), self.expected_names("docs", sort="size"))
        self.assertEqual(self.driver.find_element(By.CSS_SELECTOR, "th[data-field=size]")
                         .get_attribute("aria-sort"), "ascending")
        self.after(lambda: self.driver.find_element(By.CSS_SELECTOR, "button[data-sort=size]")
                   .click())
        descending = self.expected_names("docs", sort="size", order="desc")
        self.assertEqual(self.names(), descending)
        self.assertNotEqual(descending, self.expected_names("docs"))
        self.assertIn("order=desc", self.driver.current_url)
        self.after(lambda: self.driver.find_element(By.CSS_SELECTOR,
                                                    "button[data-sort=modified]").click())
        self.assertEqual(self.names(), self.expected_names("docs", sort="modified"))
        # Sizes in human units, the exact count on hover.
        row = [r for r in self.rows() if r.get_attribute("data-name") == "b.md"][0]
        size = row.find_element(By.CSS_SELECTOR, "td.num")
        self.assertEqual(size.text, "2.0 KiB")
        self.assertEqual(size.get_attribute("title"), "2048 bytes")

    def test_3_page_through_250_entries(self):
        self.open("#/files?path=many")
        pages = [self.names()]
        next_button = lambda: self.driver.find_element(By.ID, "next-page")  # noqa: E731
        self.assertTrue(self.driver.find_element(By.ID, "prev-page").get_attribute("disabled"))
        while next_button().is_enabled():
            self.after(next_button().click)
            pages.append(self.names())
            self.assertLess(len(pages), 10)
        self.assertEqual([len(p) for p in pages], [100, 100, 50])
        self.assertEqual([n for p in pages for n in p],
                         ["file-%03d.txt" % i for i in range(MANY)])
        self.assertEqual(self.driver.find_element(By.ID, "page-info").text, "Page 3")
        self.after(self.driver.find_element(By.ID, "prev-page").click)
        self.assertEqual(self.names(), pages[1])
        self.after(self.driver.find_element(By.ID, "first-page").click)
        self.assertEqual(self.names(), pages[0])

    def test_4_search_by_glob_and_regex_with_the_keyboard(self):
        self.open()
        box = self.driver.find_element(By.ID, "q")
        box.send_keys("*.md")
        self.after(lambda: box.send_keys(Keys.ENTER))
        expected = sorted(harness.display_form(below) for below, _, name, _, _, _ in
                          self.tree.walk() if name.endswith(b".md"))
        results = self.rows("results")
        self.assertEqual(sorted(r.get_attribute("data-path") for r in results), expected)
        self.assertIn("served by grpc", self.driver.find_element(By.ID, "served-by").text)
        self.assertNotIn("Truncated", self.driver.find_element(By.ID, "search-summary").text)
        self.screenshot("search.png")

        # A result opens the folder that holds it.
        self.click_link("docs/sub/deep.md")
        self.assertEqual(self.names(), ["deep.md"])

        self.open()
        Select(self.driver.find_element(By.ID, "syntax")).select_by_value("regex")
        box = self.driver.find_element(By.ID, "q")
        box.send_keys(r"^file-1\d5\.txt$")
        self.after(lambda: box.send_keys(Keys.ENTER))
        self.assertEqual([r.get_attribute("data-path") for r in self.rows("results")],
                         ["many/file-%03d.txt" % i for i in range(105, 200, 10)])

        # Truncation is shown with its reason.
        self.open("#/search?q=file-*&max=7")
        summary = self.driver.find_element(By.ID, "search-summary")
        self.assertEqual(len(self.rows("results")), 7)
        self.assertEqual(summary.get_attribute("data-truncated"), "TRUNCATION_REASON_MAX_RESULTS")
        self.assertIn("Truncated", summary.text)

        # Tab reaches a folder's link; Enter opens it.
        self.open()
        for _ in range(40):
            self.driver.switch_to.active_element.send_keys(Keys.TAB)
            if self.driver.switch_to.active_element.text == "docs/":
                break
        self.assertEqual(self.driver.switch_to.active_element.text, "docs/")
        self.after(lambda: self.driver.switch_to.active_element.send_keys(Keys.ENTER))
        self.assertIn("sub", self.names())

    def test_5_a_vanished_folder_is_a_404_problem(self):
        gone = self.tree.path(b"gone")
        os.mkdir(gone, 0o755)
        with open(os.path.join(gone, b"x.txt"), "wb") as f:
            f.write(b"x")
        self.open("#/files?path=gone")
        self.assertEqual(self.names(), ["x.txt"])
        shutil.rmtree(gone)
        self.expected_errors.append(("/api/v1/files", 404))
        self.after_reload(self.driver.refresh, outcome="error")
        problem = self.driver.find_element(By.ID, "problem")
        self.assertTrue(problem.is_displayed())
        self.assertEqual(self.driver.find_element(By.ID, "problem-title").text, "Not Found")
        self.assertIn('"gone"', self.driver.find_element(By.ID, "problem-detail").text)
        self.assertEqual(self.rows(), [])

    def test_6_hostile_and_non_utf8_names_are_text(self):
        self.open()
        self.assertIn(HOSTILE, self.names())
        row = [r for r in self.rows() if r.get_attribute("data-name") == HOSTILE][0]
        self.assertEqual(row.find_element(By.CSS_SELECTOR, "td.name").text, HOSTILE)
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "main img"), [])
        self.assertFalse(self.alert_present())
        # Latin-1 and broken UTF-8 names show their display form, and a folder
        # with such a name opens with its exact bytes.
        self.assertIn("r\\xe9sum\\xe9.txt", self.names())
        self.click_link("caf\\xff/")
        self.assertEqual(self.names(), ["menu.md"])
        self.assertIn("caf\\xff", self.driver.find_element(By.ID, "crumbs").text)
        self.assertIn("path=caf%FF", self.driver.current_url)
        # The page's display form is the one of docs/names.md.
        samples = [b"plain", "caf\u00e9".encode(), b"r\xe9sum\xe9", b"\xc0\x80", b"\xed\xa0\x80",
                   b"\xf4\x90\x80\x80", b"\xe2\x82", b"a\\xffb", "\U0001f600".encode(), b"\xff\xfe"]
        shown = self.driver.execute_script(
            "return arguments[0].map(b => window.filemeshPage.displayForm(new Uint8Array(b)))",
            [list(sample) for sample in samples])
        self.assertEqual(shown, [harness.display_form(sample) for sample in samples])
        # Found by a search too, still as text.
        self.open("#/search?q=*onerror*")
        self.assertEqual([r.get_attribute("data-path") for r in self.rows("results")], [HOSTILE])
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "main img"), [])

    def test_7_readable_at_400_pixels(self):
        self.driver.set_window_size(400, 800)
        self.addCleanup(self.driver.set_window_size, 1280, 900)
        self.open("#/files?path=many")
        overflow = self.driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        self.assertLessEqual(overflow, 0, "the page scrolls sideways at 400 px")
        self.screenshot("narrow.png")

    def test_8_the_api_key_is_asked_for_once(self):
        gw = self.spawn(harness.start_gateway(
            lister_grpc=self.gw_lister(), api_key="k3y-for-the-page", name="gateway-key"))
        base = f"http://{gw.http.host}:{gw.http.port}"
        self.expected_errors.append(("/api/v1/files", 401))
        self.driver.get(base + "/")
        WebDriverWait(self.driver, WAIT).until(lambda d: self.loads() > 0)
        self.assertTrue(self.driver.find_element(By.ID, "key-form").is_displayed())
        key = self.driver.find_element(By.ID, "api-key")
        key.send_keys("wrong")
        self.after(lambda: key.send_keys(Keys.ENTER), outcome="key")
        self.assertIn("not accepted", self.driver.find_element(By.ID, "key-why").text)
        key = self.driver.find_element(By.ID, "api-key")
        key.send_keys("k3y-for-the-page")
        self.after(lambda: key.send_keys(Keys.ENTER))
        self.assertIn("docs", self.names())
        self.assertFalse(self.driver.find_element(By.ID, "key-form").is_displayed())
        # Kept for the tab, never in the URL; used for the next request.
        self.assertNotIn("k3y", self.driver.current_url)
        self.click_link("docs/")
        self.assertIn("a.md", self.names())
        self.driver.execute_script("sessionStorage.clear()")

    def gw_lister(self):
        return self.replica_a.grpc_address

    def test_9_a_queued_listing_completes(self):
        # A lister whose gRPC port is closed and whose queue no replica
        # consumes yet:
        # the gateway answers 202, the page waits, and the listing comes once
        # a replica starts consuming.
        prefix = "e2e.browser.queued."
        dead = harness.loopback(harness.free_port())
        gw = self.spawn(harness.start_gateway(lister_grpc=dead, amqp_url=self.amqp_url,
                                              queue_prefix=prefix, request_timeout="1s",
                                              name="gateway-queued"))
        self.driver.get(f"http://{gw.http.host}:{gw.http.port}/#/files?path=docs")
        status = self.driver.find_element(By.ID, "status")
        WebDriverWait(self.driver, WAIT).until(lambda d: status.get_attribute("data-queued"))
        self.assertIn("Queued, waiting", status.text)
        self.mserv("mserv1", self.tree.root, name="mserv1-late", amqp_url=self.amqp_url,
                   queue_prefix=prefix)
        WebDriverWait(self.driver, 60).until(lambda d: self.loads() > 0)
        self.assertEqual(self.driver.execute_script("return document.body.dataset.state"), "ready")
        self.assertEqual(self.names(), [harness.display_form(n) for n, _, _ in
                                        self.tree.listing(b"docs")])
        self.assertEqual(self.served_by(), "amqp")

    def test_z_served_by_amqp_once_the_grpc_replica_is_killed(self):
        self.open("#/files?path=docs")
        self.assertEqual(self.served_by(), "grpc")
        self.replica_a.kill()
        deadline = time.monotonic() + 30
        while self.served_by() != "amqp" and time.monotonic() < deadline:
            self.after_reload(self.driver.refresh)
        self.assertEqual(self.served_by(), "amqp")
        self.assertEqual(self.names(), [harness.display_form(n) for n, _, _ in
                                        self.tree.listing(b"docs")])
        self.assertIn("served by amqp", self.driver.find_element(By.ID, "served-by").text)


if __name__ == "__main__":
    harness.main()
