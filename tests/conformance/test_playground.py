"""The playground page (issue 15), in a real browser: Debian's chromium, headless, driven
by Selenium, against the scripted upstream.

The page is the binary's own (``GET /playground``), and talks to the public ``/v1`` API
with the tenant's key typed into it, exactly as any client would. Each test fails on any
browser console error, and saves a screenshot of each state under the artifacts folder
(``$PLAYGROUND_ARTIFACTS``, default ``tests/conformance/artifacts/playground``).

Without chromium, chromedriver or selenium the module is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest

from helpers import marker
from upstream import slow, text, tool_call, tool_calls

pytestmark = pytest.mark.runs

selenium = pytest.importorskip("selenium", reason="selenium is not installed (tests/conformance/requirements.txt)")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ARTIFACTS = Path(os.environ.get("PLAYGROUND_ARTIFACTS") or Path(__file__).parent / "artifacts" / "playground")
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = os.environ.get("PLAYGROUND_CHROMEDRIVER") or shutil.which("chromedriver")
WAIT = 60

CHART_CODE = ("import matplotlib.pyplot as plt\nxs = list(range(10))\nplt.plot(xs, [x * x for x in xs])\n"
              "plt.title('squares')\nplt.show()\nprint('plotted')")


@pytest.fixture(scope="module")
def driver():
    if not CHROMIUM or not CHROMEDRIVER:
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup-system.sh installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as e:
        pytest.skip(f"chromium ({CHROMIUM}) could not be started: {e.msg or e}".splitlines()[0])
    d.set_page_load_timeout(30)
    yield d
    d.quit()


class Page:
    """The playground in the browser, for one test's tenant."""

    def __init__(self, driver, server, tenant, name: str):
        self.d, self.server, self.tenant, self.name = driver, server, tenant, name
        self.shots = 0
        for old in ARTIFACTS.glob(f"{name}-*.png"):
            old.unlink()

    # -- elements
    def q(self, testid: str, within=None):
        return (within or self.d).find_element(By.CSS_SELECTOR, f"[data-testid='{testid}']")

    def qs(self, testid: str, within=None):
        return (within or self.d).find_elements(By.CSS_SELECTOR, f"[data-testid='{testid}']")

    def wait(self, cond, timeout: float = WAIT, what: str = ""):
        try:
            # A re-rendered list makes elements found a moment ago stale: look again.
            return WebDriverWait(self.d, timeout, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: cond())
        except Exception:
            self.shot("timeout")
            raise AssertionError(f"timed out waiting for {what or cond}; run status "
                                 f"{self.status()!r}; error box {self.error_text()!r}")

    def type(self, testid: str, value: str, clear: bool = True):
        e = self.q(testid)
        if clear:
            e.clear()
        e.send_keys(value)

    def status(self) -> str:
        return self.q("run-status").text

    def error_text(self) -> str:
        e = self.q("error")
        return e.text if e.is_displayed() else ""

    def messages(self, role: str):
        return self.q("messages").find_elements(By.CSS_SELECTOR, f"[data-role='{role}']")

    def last_text(self, role: str) -> str:
        """The text of the last message of ``role`` (read in one go: the page re-renders it while it streams)."""
        return self.d.execute_script(
            "const ms = document.querySelectorAll(`[data-testid=messages] [data-role='${arguments[0]}'] .body`);"
            "return ms.length ? ms[ms.length - 1].innerText : '';", role)

    def shot(self, state: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{state}.png"
        self.d.save_screenshot(str(path))
        return path

    # -- flows
    def open(self, with_key: bool = True):
        self.d.get(self.server.base_url + "/")
        assert self.d.current_url == self.server.base_url + "/playground"
        self.d.execute_script("localStorage.clear()")
        self.d.refresh()
        self.wait(lambda: self.d.execute_script("return document.body.dataset.ready") == "true", what="the page")
        if not with_key:
            self.wait(lambda: self.q("assistant-list").text != "", what="the assistant list")
            assert self.error_text() == ""
            return
        # the key is needed: the page says so rather than calling the API without one
        assert "API key" in self.error_text()
        self.type("api-key", self.tenant.key)
        self.q("api-key").send_keys(Keys.ENTER)
        self.wait(lambda: self.error_text() == "" and self.q("assistant-list").text != "", what="the assistant list")
        assert self.d.execute_script("return localStorage.getItem('assistants-playground.api-key')") == self.tenant.key

    def create_assistant(self, name: str, *, instructions: str = "", functions=None, code_interpreter=False,
                         file_search=False) -> str:
        self.q("assistant-new").click()
        self.type("assistant-name", name)
        self.type("assistant-model", "gpt-4o-mini")
        if instructions:
            self.type("assistant-instructions", instructions)
        if functions is not None:
            self.d.execute_script("arguments[0].value = arguments[1]", self.q("assistant-functions"),
                                  json.dumps(functions, indent=1))
        if code_interpreter:
            self.q("assistant-code-interpreter").click()
        if file_search:
            self.q("assistant-file-search").click()
        self.q("assistant-save").click()

        def created():
            for item in self.q("assistant-list").find_elements(By.CSS_SELECTOR, "[data-assistant-id]"):
                if name in item.text:
                    return item.get_attribute("data-assistant-id")
            return None
        return self.wait(created, what=f"assistant {name} in the list")

    def send(self, content: str, files=()):
        for f in files:
            self.q("file-upload").send_keys(str(f))
        self.type("message-input", content)
        self.wait(lambda: self.q("message-send").is_enabled(), what="the send button")
        self.q("message-send").click()

    def wait_status(self, status: str, timeout: float = WAIT):
        self.wait(lambda: self.status() == status, timeout, what=f"run status {status}")

    def open_steps(self):
        """Opens every run step (clicking each summary; again if the panel was refreshed meanwhile)."""
        def all_open():
            try:
                steps = self.qs("run-step")
                for s in steps:
                    if s.get_attribute("open") is None:
                        s.find_element(By.TAG_NAME, "summary").click()
                return steps and all(s.get_attribute("open") is not None for s in self.qs("run-step"))
            except StaleElementReferenceException:
                return False
        self.wait(all_open, what="the run steps to open")


@pytest.fixture
def page(request, driver, server, tenant, upstream):
    driver.get_log("browser")  # forget what earlier tests logged
    p = Page(driver, server, tenant, request.node.name.removeprefix("test_"))
    yield p
    p.shot("end")
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, f"browser console errors: {errors}"


def key_client(tenant):
    return tenant.http()


# --------------------------------------------------------------------------- the page itself


def test_page_is_served_without_a_key_with_a_strict_policy(server):
    r = httpx.get(server.base_url + "/", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/playground"
    r = httpx.get(server.base_url + "/playground")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    for part in ("default-src 'self'", "script-src 'self'", "connect-src 'self'", "img-src 'self' blob: data:"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text  # only <script type=module src=...>
    for asset in ("app.js", "api.js", "style.css"):
        a = httpx.get(f"{server.base_url}/playground/{asset}")
        assert a.status_code == 200, asset
        assert a.headers["x-content-type-options"] == "nosniff"
    config = httpx.get(server.base_url + "/playground/config.json").json()
    assert config["auth_required"] is True and config["models"]
    assert httpx.get(server.base_url + "/v1/assistants").status_code == 401


# --------------------------------------------------------------------------- in the browser


def test_create_assistant_and_chat_with_a_streamed_reply(page, tenant, upstream):
    page.open()
    page.shot("empty")
    # invalid functions JSON: a clear error, nothing is created
    page.q("assistant-new").click()
    page.type("assistant-name", "Broken")
    page.type("assistant-model", "gpt-4o-mini")
    page.type("assistant-functions", "[{\"name\": ")
    page.q("assistant-save").click()
    err = page.q("assistant-functions-error")
    page.wait(lambda: err.is_displayed(), what="the functions error")
    assert "invalid JSON" in err.text, err.text
    page.shot("invalid-functions")
    with key_client(tenant) as http:
        assert http.get("/assistants").json()["data"] == []

    asst_id = page.create_assistant("Poet", instructions="Answer in one short line.")
    page.shot("assistant-created")
    with key_client(tenant) as http:
        a = http.get(f"/assistants/{asst_id}").json()
    assert (a["name"], a["model"], a["instructions"]) == ("Poet", "gpt-4o-mini", "Answer in one short line.")
    # selecting it loads the form
    page.q("assistant-new").click()
    page.q("assistant-list").find_element(By.CSS_SELECTOR, f"[data-assistant-id='{asst_id}']").click()
    assert page.q("assistant-name").get_attribute("value") == "Poet"

    page.q("thread-new").click()
    page.wait(lambda: page.q("thread-id").text.startswith("thread_"), what="a thread")
    mk = marker("pg")
    reply = "Hello from the scripted model, streamed token by token. <b>not bold</b>"
    upstream.enqueue(slow(reply, chunks=24, delay=0.08), match=mk)
    page.send(f"Say hello <img src=x> {mk}")
    lengths, statuses = set(), set()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        statuses.add(page.status())
        lengths.add(len(page.last_text("assistant")))
        if page.status() == "completed":
            break
        if len(lengths) == 6:
            page.shot("streaming")
        time.sleep(0.03)
    assert page.status() == "completed", (page.status(), page.error_text())
    assert page.last_text("assistant") == reply
    assert len([n for n in lengths if 0 < n < len(reply)]) >= 3, f"no partial text seen: {sorted(lengths)}"
    assert "in_progress" in statuses, statuses
    # user and model text is text, never HTML
    assert f"Say hello <img src=x> {mk}" in page.last_text("user")
    assert page.q("messages").find_elements(By.CSS_SELECTOR, "b, .body img") == []
    page.open_steps()
    page.shot("chat")
    steps = page.qs("run-step")
    assert [s.get_attribute("data-type") for s in steps] == ["message_creation"]


def test_two_parallel_function_calls_answered_by_hand(page, tenant, upstream):
    page.open()
    functions = [
        {"name": "get_weather", "description": "Weather in a city",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "get_time", "description": "Time in a zone",
         "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
    ]
    asst_id = page.create_assistant("Helper", functions=functions)
    with key_client(tenant) as http:
        tools = http.get(f"/assistants/{asst_id}").json()["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather", "get_time"]
    mk = marker("fn")
    upstream.enqueue(tool_calls(("get_weather", {"city": "Paris"}, "call_weather1"),
                                ("get_time", {"tz": "CET"}, "call_time1")), match=mk)
    upstream.enqueue(text("In Paris it is sunny, and it is noon."), match=mk)
    page.send(f"Weather and time in Paris? {mk}")
    page.wait_status("requires_action")
    calls = page.qs("tool-call")
    assert sorted(c.get_attribute("data-call-id") for c in calls) == ["call_time1", "call_weather1"]
    outputs = {"call_weather1": "sunny, 24 C", "call_time1": "12:00"}
    for c in calls:
        assert ("get_weather" in c.text and "Paris" in c.text) or ("get_time" in c.text and "CET" in c.text), c.text
        page.q("tool-output", within=c).send_keys(outputs[c.get_attribute("data-call-id")])
    page.open_steps()
    page.shot("tools")
    page.q("tool-submit").click()
    page.wait_status("completed")
    page.wait(lambda: page.last_text("assistant") == "In Paris it is sunny, and it is noon.", what="the reply")
    assert page.qs("tool-call") == [] and not page.q("tool-calls").is_displayed()
    # the model got both outputs
    last = upstream.requests_containing(mk)[-1].body
    tool_msgs = {m["tool_call_id"]: m["content"] for m in last["messages"] if m.get("role") == "tool"}
    assert tool_msgs == outputs, tool_msgs
    # the run steps show the calls with their arguments and outputs
    page.wait(lambda: len(page.qs("run-step")) == 2, what="two run steps")
    page.open_steps()
    steps_text = page.q("run-steps").text
    for needle in ("get_weather", "get_time", '"city": "Paris"', "sunny, 24 C", "12:00"):
        assert needle in steps_text, (needle, steps_text)
    page.shot("tools-done")


def test_attached_file_is_searched_and_cited(page, tenant, upstream, tmp_path):
    page.open()
    page.create_assistant("Librarian", file_search=True)
    memo = tmp_path / "memo.txt"
    memo.write_text("Attached memo: the vault combination is 31-7-44.\n")
    mk = marker("fs")
    upstream.enqueue(tool_call("file_search", {"queries": ["vault combination"]}), match=mk)
    upstream.enqueue(text("It is 31-7-44 【0†memo.txt】."), match=mk)
    page.send(f"What is the vault combination? {mk}", files=[memo])
    page.wait_status("completed")
    page.wait(lambda: "31-7-44" in page.last_text("assistant"), what="the answer")
    msg = page.messages("assistant")[-1]
    assert "【" not in msg.text and "[1]" in msg.text, msg.text
    page.wait(lambda: [n.text for n in page.qs("footnote", within=msg)] == ["source: memo.txt"], what="the footnote")
    assert "memo.txt" in page.messages("user")[-1].text  # the attachment is named
    # the model was given the chunk; the step shows the result with its content
    assert "31-7-44" in json.dumps(upstream.requests_containing(mk)[-1].body)
    page.wait(lambda: len(page.qs("run-step")) == 2, what="two run steps")
    page.open_steps()
    steps_text = page.q("run-steps").text
    assert "file_search" in steps_text and "memo.txt" in steps_text and "31-7-44" in steps_text, steps_text
    page.shot("citation")


def test_code_interpreter_image_is_shown(page, tenant, upstream):
    if not Path("/usr/bin/bwrap").exists():
        pytest.skip("bubblewrap (/usr/bin/bwrap) is not installed: no code_interpreter sandbox")
    page.open()
    page.create_assistant("Plotter", code_interpreter=True)
    mk = marker("ci")
    upstream.enqueue(tool_call("code_interpreter", {"code": CHART_CODE}), text("Here is the chart of the squares."),
                     match=mk)
    page.send(f"Plot the squares {mk}")
    page.wait_status("completed", timeout=120)
    msg = page.messages("assistant")[-1]
    page.wait(lambda: msg.find_elements(By.CSS_SELECTOR, ".body img"), what="the image")
    img = msg.find_element(By.CSS_SELECTOR, ".body img")
    page.wait(lambda: page.d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100,
              what="the image to load")
    assert img.get_attribute("src").startswith("blob:")
    assert "Here is the chart of the squares." in msg.text
    page.wait(lambda: len(page.qs("run-step")) == 2, what="two run steps")
    page.open_steps()
    steps_text = page.q("run-steps").text
    assert "code_interpreter" in steps_text and "plt.title('squares')" in steps_text and "plotted" in steps_text
    assert page.q("run-steps").find_elements(By.CSS_SELECTOR, "img")
    page.shot("code-image")


def test_assistant_files_for_the_tools_and_delete(page, tenant, tmp_path):
    page.open()
    notes = tmp_path / "notes.txt"
    notes.write_text("The ferry leaves at 7:15.\n")
    page.q("assistant-new").click()
    page.type("assistant-name", "Filer")
    page.type("assistant-model", "gpt-4o-mini")
    page.q("assistant-code-interpreter").click()
    page.q("assistant-file-search").click()
    page.q("assistant-files").send_keys(str(notes))
    page.q("assistant-save").click()
    def files_text():
        return page.d.execute_script("return document.getElementById('assistant-file-list').textContent")
    page.wait(lambda: "file_search: notes.txt" in files_text(), what=f"the assistant's files")
    assert "code_interpreter: notes.txt" in files_text()
    asst_id = page.q("assistant-list").find_element(By.CSS_SELECTOR, "li.selected").get_attribute("data-assistant-id")
    with key_client(tenant) as http:
        a = http.get(f"/assistants/{asst_id}").json()
        (fid,) = a["tool_resources"]["code_interpreter"]["file_ids"]
        (vs,) = a["tool_resources"]["file_search"]["vector_store_ids"]
        assert [f["id"] for f in http.get(f"/vector_stores/{vs}/files").json()["data"]] == [fid]
        assert http.get(f"/files/{fid}").json()["filename"] == "notes.txt"
    page.shot("assistant-files")
    page.q("assistant-delete").click()
    page.d.switch_to.alert.accept()
    page.wait(lambda: page.q("assistant-list").find_elements(By.CSS_SELECTOR, "[data-assistant-id]") == [],
              what="the assistant to go")
    with key_client(tenant) as http:
        assert http.get(f"/assistants/{asst_id}").status_code == 404


def test_a_server_without_keys_needs_none(driver, server_factory, upstream, request):
    """What a new user sees: a loopback server with no API keys; no key typed, and the chat works."""
    s = server_factory(api_keys=None)
    page = Page(driver, s, None, "no_keys")
    driver.get_log("browser")
    page.open(with_key=False)
    page.create_assistant("First")
    mk = marker("nokey")
    upstream.enqueue(slow("Hi! I am your first assistant.", chunks=8, delay=0.02), match=mk)
    page.send(f"Hello {mk}")
    page.wait_status("completed")
    page.wait(lambda: page.last_text("assistant") == "Hi! I am your first assistant.", what="the reply")
    page.shot("first-chat")
    errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert not errors, f"browser console errors: {errors}"
