"""The HTML report in a real headless Chromium, driven over the DevTools protocol (no network).

Chromium talks CDP over ``--remote-debugging-pipe`` (fds 3 and 4, NUL-separated JSON), so the
test needs only the standard library and ``/usr/bin/chromium`` (installed by .ci/setup.d).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from evalport.adapters.report.formatting import fmt_delta, fmt_stderr, fmt_value
from evalport.adapters.report.html import render_html
from evalport.domain.comparison import Comparison, build_comparison
from evalport.domain.model import Metric, TaskResult

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (.ci/setup.d/10-chromium.sh)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    # Belt and braces: anything that did try the network would hit a closed local port.
    "--proxy-server=http://127.0.0.1:9",
    "--window-size=1280,1000",
    "--remote-debugging-pipe",
]


class Browser:
    """A minimal CDP client over Chromium's debugging pipe."""

    def __init__(self, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: CDP expects its pipe on fds 3 (in) and 4 (out)
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            # fds 3 and 4 are wired by preexec_fn (which runs before the child closes other fds)
            pass_fds=(3, 4),
            preexec_fn=wire_fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the debugging pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method and event.get("sessionId") == session:
                return event
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return event

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def eval(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in got:
            raise AssertionError(f"page script failed: {got['exceptionDetails']}")
        return got["result"].get("value")

    def events(self, method: str) -> list[dict[str, Any]]:
        return [
            e["params"]
            for e in self.browser.events
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    def press_enter(self) -> None:
        base = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        self.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": "\r", **base})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def console_errors(self) -> list[str]:
        errors = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            for p in self.events("Runtime.consoleAPICalled")
            if p.get("type") in ("error", "assert")
        ]
        errors += [p["exceptionDetails"].get("text", "") for p in self.events("Runtime.exceptionThrown")]
        errors += [
            p["entry"]["text"] for p in self.events("Log.entryAdded") if p["entry"]["level"] == "error"
        ]
        return errors

    def requested_urls(self) -> list[str]:
        return [p["request"]["url"] for p in self.events("Network.requestWillBeSent")]


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        b.send("Browser.getVersion")
        yield b
    finally:
        b.close()


def open_page(browser: Browser, url: str) -> Page:
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    page = Page(browser, session)
    for domain in ("Page", "Runtime", "Log", "Network"):
        page.send(f"{domain}.enable")
    page.send("Page.navigate", {"url": url})
    browser.wait_for("Page.loadEventFired", session)
    return page


def result(
    job: str, model: str, task: str, metrics: dict[str, tuple[float, float | None]], **kw
) -> TaskResult:
    return TaskResult(
        job_id=f"{job[:8]}.{kw.pop('index', 0)}",
        invocation_id=job[:8],
        task=task,
        harness=kw.pop("harness", "lm-evaluation-harness"),
        model_id=model,
        executor="local",
        metrics=tuple(Metric(n, v, {"stderr": s} if s is not None else {}) for n, (v, s) in metrics.items()),
        container="nvcr.io/nvidia/eval-factory/lm-evaluation-harness:26.03",
        timestamp=1767225600.0 + kw.pop("offset", 0),
    )


ODD_MODEL = 'org/<b>odd</b> & "model"'


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    results = [
        result(
            "aaaa0001",
            "meta/llama-3.1-8b-instruct",
            "gsm8k",
            {"gsm8k_exact_match_strict-match": (0.62, 0.013)},
        ),
        result("aaaa0001", "meta/llama-3.1-8b-instruct", "mmlu", {"mmlu_acc": (0.68, 0.004)}, index=1),
        result(
            "bbbb0002", "qwen/qwen2.5-7b-instruct", "gsm8k", {"gsm8k_exact_match_strict-match": (0.81, 0.011)}
        ),
        result("bbbb0002", "qwen/qwen2.5-7b-instruct", "mmlu", {"mmlu_acc": (0.71, None)}, index=1),
        result("cccc0003", ODD_MODEL, "gsm8k", {"gsm8k_exact_match_strict-match": (0.40, 0.014)}),
        result("cccc0003", ODD_MODEL, "humaneval", {"humaneval_pass@1": (0.33, 0.03)}, index=1),
    ]
    return build_comparison(results, baseline="meta/llama-3.1-8b-instruct")


@pytest.fixture(scope="module")
def report_page(browser, comparison, tmp_path_factory) -> tuple[Page, Path]:
    out = tmp_path_factory.mktemp("report")
    path = out / "report.html"
    path.write_text(render_html(comparison, title="Browser test"), encoding="utf-8")
    return open_page(browser, path.as_uri()), path


def matrix(page: Page) -> list[dict[str, Any]]:
    """The rendered table, read from the DOM as a person sees it (innerText)."""
    return page.eval(
        """Array.from(document.querySelectorAll('#matrix-table tbody tr')).map(tr => ({
            model: tr.getAttribute('data-model'),
            header: tr.cells[0].innerText,
            cells: Array.from(tr.querySelectorAll('td')).map(td => ({
                task: td.getAttribute('data-task'),
                value: td.querySelector('.v').innerText,
                stderr: (td.querySelector('.se') || {innerText: ''}).innerText,
                delta: (td.querySelector('.d') || {innerText: ''}).innerText,
                best: td.classList.contains('best'),
            })),
        }))"""
    )


def test_the_page_shows_every_model_and_task_with_the_values_of_the_comparison(report_page, comparison):
    page, _ = report_page
    rows = matrix(page)
    assert [r["model"] for r in rows] == list(comparison.models)
    # escaped: shown as text, never parsed as markup
    assert ODD_MODEL in next(r["header"] for r in rows if r["model"] == ODD_MODEL)
    assert page.eval("document.querySelectorAll('#matrix-table b').length") == 0
    headers = page.eval(
        "Array.from(document.querySelectorAll('#matrix-table thead th')).map(th => th.innerText)"
    )
    for column, header in zip(comparison.tasks, headers[1:], strict=True):
        assert column.label in header and column.metric_short in header
    for row in rows:
        assert [c["task"] for c in row["cells"]] == [t.key for t in comparison.tasks]
        for shown in row["cells"]:
            cell = comparison.cell(row["model"], shown["task"])
            assert shown["value"] == fmt_value(cell.value)
            assert shown["stderr"] == fmt_stderr(cell.stderr)
            assert shown["delta"] == fmt_delta(cell.delta)
            assert shown["best"] == cell.best
    qwen = next(r for r in rows if r["model"].startswith("qwen/"))
    qwen_gsm8k = next(c for c in qwen["cells"] if c["task"].endswith("/gsm8k"))
    assert qwen_gsm8k == {
        "task": "lm-evaluation-harness/gsm8k",
        "value": "0.8100",
        "stderr": "± 0.0110",
        "delta": "+0.1900",
        "best": True,
    }


def test_the_page_logs_no_errors_and_requests_nothing_but_itself(report_page):
    page, path = report_page
    assert page.console_errors() == []
    assert page.requested_urls() == [path.as_uri()]
    assert page.eval("document.querySelectorAll('#charts svg').length") == 3
    assert page.eval("document.querySelectorAll('link, img[src^=http], script[src]').length") == 0


def test_sorting_from_the_keyboard_reorders_rows_and_updates_aria_sort(report_page, comparison, tmp_path):
    page, _ = report_page
    order = lambda: [r["model"] for r in matrix(page)]  # noqa: E731
    sort_state = "Array.from(document.querySelectorAll('#matrix-table thead th')).map(th => th.getAttribute('aria-sort'))"
    before = order()
    gsm8k = 1 + [t.task for t in comparison.tasks].index("gsm8k")
    page.eval(f"document.querySelectorAll('#matrix-table thead th button')[{gsm8k}].focus()")
    assert page.eval("document.activeElement.textContent").startswith("gsm8k")
    page.press_enter()
    by_value = sorted(before, key=lambda m: -(comparison.cell(m, "lm-evaluation-harness/gsm8k").value or 0))
    assert order() == by_value != before
    states = page.eval(sort_state)
    assert states[gsm8k] == "descending" and all(s == "none" for i, s in enumerate(states) if i != gsm8k)
    page.press_enter()
    assert order() == by_value[::-1]
    assert page.eval(sort_state)[gsm8k] == "ascending"
    assert "gsm8k" in page.eval("document.getElementById('sort-status').textContent")
    # a model that did not run the task stays last whichever way the column is sorted
    humaneval = 1 + [t.task for t in comparison.tasks].index("humaneval")
    page.eval(f"document.querySelectorAll('#matrix-table thead th button')[{humaneval}].focus()")
    page.press_enter()
    assert order()[0] == ODD_MODEL
    shot = page.send("Page.captureScreenshot", {"format": "png"})["data"]
    (tmp_path / "report.png").write_bytes(base64.b64decode(shot))
    assert (tmp_path / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert page.console_errors() == []


def test_a_local_sink_report_opens_offline_and_links_the_staged_artifacts(browser, tmp_path):
    from evalport.adapters.sinks.local import LocalSink
    from evalport.app.container import build_container
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(
        tmp_path / "launcher", invocations=2, tasks_per_invocation=2, seed=5, secrets=False
    )
    service = build_container(exec_db=str(home.exec_db), job_dirs=[]).service()
    sink = LocalSink({"output_dir": str(tmp_path / "out"), "format": "html"})
    report = service.export_to(home.invocation_ids, [sink])
    assert report.ok, report.to_dict()
    page = open_page(browser, (tmp_path / "out" / "report.html").as_uri())
    assert page.console_errors() == []
    assert page.requested_urls() == [(tmp_path / "out" / "report.html").as_uri()]
    hrefs = page.eval("Array.from(document.querySelectorAll('#jobs a')).map(a => a.href)")
    job = home.jobs[0]
    expected = (tmp_path / "out" / job.invocation_id / job.job_id / "artifacts" / "results.yml").as_uri()
    assert expected in hrefs
    assert all(Path(unquote(h.removeprefix("file://"))).is_file() for h in hrefs)
    assert not any(".secrets.env" in h or "/cache/" in h for h in hrefs)
    page.send("Page.captureScreenshot", {"format": "png"})
