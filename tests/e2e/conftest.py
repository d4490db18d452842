"""End to end in a real browser: Debian's Chromium driven by Playwright against a real daphne
(`live_daphne`) serving the test database, with real websockets.

Residents are on a phone (390×844, Simplified Chinese); professionals on a desktop. Everyone has
a browser context of their own, so cookies, storage and network are theirs alone.

A failed test leaves, in test-artifacts/<test>/, a screenshot and the console log of every page
it had open, and the server's log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation
from playwright._impl._api_structures import SetCookieParam
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Download,
    FilePayload,
    Locator,
    Page,
    expect,
    sync_playwright,
)

from consult.models import User
from realtime.models import Connection
from tests.cluster import stop_process
from tests.live import ROOT, Daphne, live_daphne  # noqa: F401 - the fixture, for `server`

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 10_000
ARTIFACTS = ROOT / "test-artifacts"
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "extra_http_headers": {"Accept-Language": "zh-hans"},
}
DESKTOP: dict[str, Any] = {
    "viewport": {"width": 1280, "height": 900},
    "locale": "zh-CN",
    "extra_http_headers": {"Accept-Language": "zh-hans"},
}
# Elderly users: type no smaller than this, buttons a finger can hit (WCAG 2.5.5's 44 px).
MIN_FONT_PX = 16
MIN_BUTTON_PX = 44

expect.set_options(timeout=TIMEOUT_MS)


def in_language(language: str) -> dict[str, Any]:
    """A browser set up for a person who reads `language` (the browser's and the page's)."""
    locale = "zh-CN" if language == "zh-hans" else language
    return {"locale": locale, "extra_http_headers": {"Accept-Language": language}}


def zh(message: str, **params: Any) -> str:
    """A project string as the Chinese pages show it."""
    with translation.override("zh-hans"):
        text = translation.gettext(message)
    return text % params if params else text


def zh_in(context: str, message: str) -> str:
    """A project string marked with a context (pgettext), as the Chinese pages show it."""
    with translation.override("zh-hans"):
        return translation.pgettext(context, message)


def pdf_text(path: Path) -> str:
    """The PDF's text as a reader gets it, whitespace runs made one space."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-"), data[:20]
    result = subprocess.run(
        ["/usr/bin/pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return " ".join(result.stdout.decode().split())


# --- failures leave evidence ---------------------------------------------------------------------

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


# --- the browser and the server ------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the package. Missing is a failure, never a skip: `make test` installs it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's Chromium at {CHROMIUM}: apt-get install chromium "
            "(`make test` installs it). Playwright's own browser download is not used.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def private_root(settings: Any, tmp_path: Path) -> Path:
    """One private file folder for this test, shared by the server and this process (files a
    test makes through a service, the server must be able to serve)."""
    root = tmp_path / "private"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


@pytest.fixture
def sms_folder(tmp_path: Path) -> Path:
    """Where the server's SMS are written (the `file` backend); tests/e2e/sms.py reads them."""
    return tmp_path / "sms"


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch, private_root: Path, sms_folder: Path) -> None:
    """What `live_daphne` passes on to the server: the test's file folder, and a channel and
    cache prefix of its own, so on Redis no cached figure or tracking counter of another run (or
    of this process) is seen; a job queue of its own (served by `job_worker` when a test needs
    its jobs run) and SMS written to `sms_folder`."""
    monkeypatch.setenv("PRIVATE_FILES_ROOT", str(private_root))
    monkeypatch.setenv("CHANNELS_PREFIX", f"e2e-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("CELERY_QUEUE", f"e2e-{uuid.uuid4().hex[:12]}")
    monkeypatch.setenv("SMS_BACKEND", "file")
    monkeypatch.setenv("SMS_FILE_PATH", str(sms_folder))
    monkeypatch.setenv("OFFLINE_NOTICE_DELAY_SECONDS", "2")  # the chat's away check, by the worker, 2 s late
    # No quiet hours (as in this process, tests/conftest.py): from 22:00 Beijing time the server
    # would hold every SMS until morning, and what a journey sends must not depend on the hour.
    monkeypatch.setenv("NOTICE_QUIET_START", "0")
    monkeypatch.setenv("NOTICE_QUIET_END", "0")


@pytest.fixture
def server(server_env: None, live_daphne: Daphne) -> Daphne:  # noqa: F811 - the fixture imported above
    return live_daphne


@pytest.fixture
def job_worker(server: Daphne, tmp_path: Path) -> Iterator[Path]:
    """A real Celery worker on the server's queue: it runs the jobs the server's requests queue
    after they commit (the SMS among them). Yields its log."""
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "consult", "worker", "--loglevel", "INFO", "--without-mingle",
             "--without-gossip", "--concurrency", "1", "--hostname", f"{server.env['CELERY_QUEUE']}@%h"],
            cwd=ROOT, env=server.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        yield log
    finally:
        stop_process(process)


@pytest.fixture(autouse=True)
def sync_database_access(server: Daphne, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Playwright's sync API runs the test inside the turns of its own event loop, which Django
    takes for async code and so refuses this process's queries. Allowed only once the server has
    started (it copies the environment), so the server keeps the check.

    Data this process makes through services announces nothing: no browser listens to this
    process's channel layer (only to the server's), and async_to_sync cannot run in that loop.
    What the browsers must see live, the tests do through the browsers."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.CHANNEL_LAYERS = {}


# --- people at their browsers --------------------------------------------------------------------


@dataclass
class Screen:
    label: str
    context: BrowserContext
    page: Page
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Requests to any host but the site's own (a CDN, a web font, an analytics beacon).
    foreign: list[str] = field(default_factory=list)


def session_cookie(user: User, url: str) -> SetCookieParam:
    """A logged-in session for `user`, as the browser would hold it after logging in."""
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": url}


class Browsers:
    """Opens a phone or a desktop for each person; keeps what their pages logged."""

    def __init__(self, browser: Browser, server: Daphne) -> None:
        self.browser = browser
        self.server = server
        self.screens: list[Screen] = []

    def phone(self, label: str, user: User | None = None, language: str = "zh-hans", **options: Any) -> Page:
        return self._open(label, {**PHONE, **in_language(language), **options}, user)

    def desktop(self, label: str, user: User | None = None) -> Page:
        return self._open(label, DESKTOP, user)

    def foreign_requests(self) -> list[str]:
        return [f"{s.label}: {url}" for s in self.screens for url in s.foreign]

    def _open(self, label: str, options: dict[str, Any], user: User | None) -> Page:
        context = self.browser.new_context(base_url=self.server.url, accept_downloads=True, **options)
        context.set_default_timeout(TIMEOUT_MS)
        if user is not None:
            context.add_cookies([session_cookie(user, self.server.url)])
        page = context.new_page()
        screen = Screen(label, context, page)
        page.on("console", lambda m: screen.console.append(f"[{m.type}] {m.text} ({page.url})"))
        page.on("pageerror", lambda e: screen.errors.append(f"{e} ({page.url})"))
        own = urlsplit(self.server.url).netloc
        context.on(
            "request",
            lambda r: screen.foreign.append(f"{r.url} (from {page.url})")
            if urlsplit(r.url).scheme not in ("data", "blob") and urlsplit(r.url).netloc != own
            else None,
        )
        self.screens.append(screen)
        return page

    def js_errors(self) -> list[str]:
        return [f"{s.label}: {error}" for s in self.screens for error in s.errors]

    def save_artifacts(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for screen in self.screens:
            lines = [*screen.console, *(f"[pageerror] {e}" for e in screen.errors)]
            (folder / f"{screen.label}.console.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
            try:
                screen.page.screenshot(path=str(folder / f"{screen.label}.png"), full_page=True, timeout=5_000)
            except Exception as error:  # a crashed or closed page: say so, keep the rest
                (folder / f"{screen.label}.screenshot-failed.txt").write_text(str(error), encoding="utf-8")
        if self.server.log.exists():
            shutil.copyfile(self.server.log, folder / "daphne.log")

    def close(self) -> None:
        for screen in self.screens:
            try:
                screen.context.close()
            except Exception:  # noqa: S110 - already gone with the browser
                pass


@pytest.fixture
def browsers(request: pytest.FixtureRequest, browser: Browser, server: Daphne) -> Iterator[Browsers]:
    people = Browsers(browser, server)
    yield people
    reports = request.node.stash.get(REPORTS, {})
    if any(report.failed for report in reports.values()):
        people.save_artifacts(ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.nodeid))
    people.close()
    # Let the server finish closing the sockets before it is stopped: daphne stopped in the middle
    # of a disconnect hangs until it is killed (the disconnect's broadcast waits on a loop that
    # has gone).
    deadline = time.monotonic() + 5
    while Connection.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def next_step(page: Page) -> None:
    """The intake's "Next": on to its following step (static/js/steps.js)."""
    page.locator("form[data-intake] section.step:not([hidden]) [data-next]").click()


def upload(name: str, content_type: str, data: bytes) -> FilePayload:
    """A file as the phone's file picker hands it over."""
    return {"name": name, "mimeType": content_type, "buffer": data}


def download(page: Page, link: Locator, folder: Path) -> Path:
    """Click a download link and keep the file."""
    with page.expect_download() as info:
        link.click()
    got: Download = info.value
    path = folder / got.suggested_filename
    got.save_as(path)
    return path


def marked(page: Page) -> None:
    """Mark the loaded document; `still_marked` proves later that it was never reloaded."""
    page.evaluate("window.__e2eMark = true")


def still_marked(page: Page) -> bool:
    return bool(page.evaluate("window.__e2eMark === true"))


# --- accessibility -------------------------------------------------------------------------------

A11Y_SCRIPT = """
([minButton, minFont]) => {
  // Not what is merely laid out: a closed <details> keeps its content laid out, unseen.
  const shown = el => el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const describe = el => el.outerHTML.slice(0, 160);
  const problems = [];
  const notFields = ['hidden', 'submit', 'button', 'reset', 'image'];
  const fields = Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => !(el.tagName === 'INPUT' && notFields.includes(el.type)) && shown(el));
  for (const el of fields) {
    // el.labels: label[for] (the first element with that id only) and wrapping labels.
    const byLabel = Array.from(el.labels || []).some(l => l.textContent.trim() !== '');
    const byAria = (el.getAttribute('aria-label') || '').trim() !== '';
    const byLabelledBy = (el.getAttribute('aria-labelledby') || '').split(/\\s+/)
      .some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim() !== '');
    if (!byLabel && !byAria && !byLabelledBy) problems.push('field without a label: ' + describe(el));
  }
  const font = parseFloat(getComputedStyle(document.body).fontSize);
  if (font < minFont) problems.push('body font-size ' + font + 'px < ' + minFont + 'px');
  const buttons = Array.from(document.querySelectorAll('button, .button, input[type=submit]')).filter(shown);
  if (minButton) {
    for (const el of buttons) {
      const height = el.getBoundingClientRect().height;
      if (height < minButton) problems.push(`button lower than ${minButton}px (${height}px): ${describe(el)}`);
    }
  }
  return {problems, fields: fields.length, buttons: buttons.length};
}
"""


@dataclass
class Audit:
    url: str
    problems: list[str]
    fields: int
    buttons: int


def audit(page: Page) -> Audit:
    """What this page, as shown now, gets wrong: unlabelled fields, small type, and (on a phone)
    buttons too small to hit. Counts what it checked, so a check of nothing shows."""
    page.wait_for_load_state("load")  # styles applied: a page still loading has unstyled buttons
    viewport = page.viewport_size or {"width": 0}
    on_phone = viewport["width"] <= PHONE["viewport"]["width"]
    found = page.evaluate(A11Y_SCRIPT, [MIN_BUTTON_PX if on_phone else 0, MIN_FONT_PX])
    return Audit(page.url, [f"{page.url}: {p}" for p in found["problems"]], found["fields"], found["buttons"])


def assert_accessible(page: Page) -> None:
    problems = audit(page).problems
    assert not problems, "\n".join(problems)


# --- axe-core and tap targets ----------------------------------------------------------------------

# Installed by `make test` (npm ci in tests/e2e, from its package-lock.json).
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# Elderly users: every control a finger can hit (WCAG 2.5.5's 44 x 44 px).
MIN_TARGET_PX = 44

TARGETS_SCRIPT = """
(min) => {
  const shown = el => el.checkVisibility({visibilityProperty: true, contentVisibilityAuto: true});
  const describe = el => el.outerHTML.slice(0, 160);
  const controls = Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button], ' +
    '[tabindex]:not([tabindex="-1"])'
  )).filter(el => shown(el) && !el.closest('.visually-hidden'));
  const problems = [];
  for (const el of controls) {
    // WCAG 2.5.5's one exception: a link inside a sentence, sized by the text around it.
    if (el.tagName === 'A' && getComputedStyle(el).display === 'inline') {
      const block = el.closest('p, li, dd, td, label');
      if (block && block.textContent.trim().length > el.textContent.trim().length) continue;
    }
    // A check box or radio is hit through its label as well: the target is both together.
    let box = el.getBoundingClientRect();
    let left = box.left, top = box.top, right = box.right, bottom = box.bottom;
    for (const label of Array.from(el.labels || [])) {
      const r = label.getBoundingClientRect();
      if (r.width && r.height && ['checkbox', 'radio'].includes(el.type)) {
        left = Math.min(left, r.left); top = Math.min(top, r.top);
        right = Math.max(right, r.right); bottom = Math.max(bottom, r.bottom);
      }
    }
    const width = Math.round(right - left), height = Math.round(bottom - top);
    if (width < min || height < min) problems.push(`${width}x${height}px: ${describe(el)}`);
  }
  return {problems, controls: controls.length};
}
"""


@dataclass
class Targets:
    url: str
    problems: list[str]
    controls: int


def small_targets(page: Page) -> Targets:
    """Controls on the page as shown now smaller than MIN_TARGET_PX either way."""
    page.wait_for_load_state("load")
    found = page.evaluate(TARGETS_SCRIPT, MIN_TARGET_PX)
    return Targets(page.url, [f"{page.url}: {p}" for p in found["problems"]], found["controls"])


def axe_violations(page: Page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[str]:
    """axe-core's violations of these impacts on the page as shown now, one line each with the
    elements at fault. The page's context must bypass its CSP (the script is injected inline)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: `make test` installs it (npm ci in tests/e2e).", pytrace=False)
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
      const r = await axe.run(document, {resultTypes: ['violations']});
      const why = n => (n.failureSummary || '').split('\\n').slice(1, 2).join('');
      return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ') + ' ' + why(n))}));
    }""")
    return [
        f"{page.url}: [{v['impact']}] {v['id']} ({v['help']}): " + " | ".join(v["nodes"][:4])
        for v in result
        if v["impact"] in impacts
    ]
