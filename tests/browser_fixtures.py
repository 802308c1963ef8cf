"""Browser fixtures (a pytest plugin, loaded once by pyproject's addopts so the session browser is one object):
Playwright for Python driving Debian's Chromium (/usr/bin/chromium), never a downloaded one.

Every page a test opens is watched: a console error or a failed request (4xx/5xx, or a network failure)
fails the test. Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def _plain_static_names(settings: Any) -> None:
    """The live server's static handler serves files by their source names, not the manifest's hashed ones."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test worker."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread for the rest of the session; the
    # ORM calls tests make between browser steps are ordinary synchronous calls, so Django's
    # async-safety guard is lifted while the browser lives.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


class PageProblems(list[str]):
    """Console errors and failed requests seen by a page."""


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, _plain_static_names: None) -> Iterator[Any]:
    """A fresh browser context and page; fails the test on any console error or failed request."""
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = context.new_page()
    problems = PageProblems()
    pg.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error"
            and not (
                getattr(pg, "_expect_error_status", False)
                and msg.text.startswith("Failed to load resource: the server responded with a status of 4")
            )
            else None
        ),
    )
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}"))
    pg.on(
        "response",
        lambda resp: (
            problems.append(f"HTTP {resp.status}: {resp.url}")
            if resp.status >= 400 and not getattr(pg, "_expect_error_status", False)
            else None
        ),
    )
    pg.problems = problems
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    context.close()
    assert not problems, "the browser saw errors:\n" + "\n".join(problems)


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def login(page: Any, base_url: str, username: str, password: str = "correct horse battery") -> None:
    """Sign in through the real login form."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
