"""The audit console in a real Chromium, on SQLite and PostgreSQL: sign in, find, read, verify.

Each step a reviewer takes is driven through Debian's Chromium by Playwright; the run
saves screenshots (docs/console.md shows copies of them).
"""

from __future__ import annotations

import html
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from console_world import CHROMIUM, IMAGE, SCRIPT, TEMPLATE, World, require_chromium, served_world
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import text

from chameleon_workflow.client import ChameleonClient
from chameleon_workflow.config import Settings
from chameleon_workflow.db import make_engine
from chameleon_workflow.testing import append_only_disabled

pytestmark = pytest.mark.timeout(300)
# A loaded CI machine can be slow to answer; waiting longer costs nothing when it is not.
expect.set_options(timeout=20_000)
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
UOW_LINK = re.compile(r'<a class="uow" href="/ui/uows/([0-9a-f-]+)"')
NEXT_LINK = re.compile(r'<a id="next" href="([^"]+)"')


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Serve the console's world (one server per back end for the module)."""
    require_chromium()
    with served_world(request, tmp_path_factory) as served:
        yield served


@pytest.fixture(scope="module")
def browser(world: World) -> Iterator[Browser]:
    """Launch Debian's Chromium, headless (no sandbox: CI runs as root)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """Open a fresh browser context (no cookies) and fail on any dialog a script opens."""
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == []


def sign_in(page: Page, world: World, token: str) -> None:
    """Sign in through the form."""
    page.goto(f"{world.console}/")
    expect(page).to_have_url(f"{world.console}/signin")
    page.fill("#token", token)
    page.click("#signin")
    expect(page).to_have_url(f"{world.console}/uows")


def shot(page: Page, world: World, name: str) -> None:
    """Save a screenshot of the page for the docs."""
    page.screenshot(path=str(world.screenshots / f"{name}.png"), full_page=True)


def test_sign_in_filter_and_read_a_timeline(page: Page, world: World) -> None:
    """The auditor signs in, finds an invoice by attribute and reads its verified, sealed story."""
    sign_in(page, world, world.auditor_token)
    expect(page.get_by_test_id("viewer")).to_have_text("signed in as auditor")
    expect(page.get_by_test_id("counts")).to_contain_text("PENDING 3")
    shot(page, world, "uows")
    page.fill("input[name=attribute]", "invoice_id=INV-1")
    page.click("#filter")
    expect(page.locator("a.uow")).to_have_count(1)
    expect(page.locator("a.uow")).to_have_text(world.plain_uow)
    page.click("a.uow")
    expect(page).to_have_url(f"{world.console}/uows/{world.plain_uow}")
    expect(page.get_by_test_id("verdict")).to_have_text("verifies: no finding")
    rows = page.locator("li.row")
    expect(rows).to_have_count(3)
    expect(page.locator("li.row.verified")).to_have_count(3)
    expect(page.locator("li.row", has_text="checkpoint covers position")).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("PENDING → ACTIVE")
    expect(rows.nth(2)).to_contain_text("ACTIVE → PENDING")
    expect(rows.nth(2)).to_contain_text("submitted → ready_for_approval")
    expect(rows.nth(2)).to_contain_text("amount_router")
    expect(rows.nth(2).locator("dd.role")).to_contain_text("triage")
    expect(rows.nth(0).locator(".changes")).to_contain_text('invoice_id: ∅ → "INV-1"')
    shot(page, world, "timeline")
    with page.expect_download() as download:
        rows.nth(0).locator("a.proof").click()
    proof = json.loads(Path(download.value.path()).read_text())
    assert proof["format"] == "chameleon-inclusion-proof/v1"
    assert proof["table"] == "uow_history"


def test_stored_markup_shows_as_text(page: Page, world: World) -> None:
    """Markup and template syntax in names, attributes and reasoning show as text, never run."""
    sign_in(page, world, world.auditor_token)
    page.goto(f"{world.console}/uows/{world.hostile_uow}")
    expect(page.locator("dl.attrs")).to_contain_text(json.dumps(SCRIPT))
    expect(page.locator("dl.attrs")).to_contain_text(json.dumps(TEMPLATE))
    expect(page.locator("dd.reasoning").last).to_have_text(f"triaged {SCRIPT} {IMAGE} {TEMPLATE}")
    expect(page.locator("dd.actor").first).to_contain_text(f"Agent {SCRIPT}")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.locator("dl.attrs dd", has_text="49").count() == 0
    shot(page, world, "escaping")
    page.goto(f"{world.console}/uows")
    expect(page.locator("td.attrs").nth(1)).to_contain_text(json.dumps(SCRIPT))
    assert page.evaluate("window.__pwned") is None


def test_a_wrong_token_is_refused(page: Page, world: World) -> None:
    """A token that names no one shows the sign-in form again with a message."""
    page.goto(f"{world.console}/signin")
    page.fill("#token", "chm_not-a-token")
    page.click("#signin")
    expect(page.locator("p.error")).to_have_text("That token is not valid.")
    page.goto(f"{world.console}/uows")
    expect(page).to_have_url(f"{world.console}/signin")


def test_an_actor_sees_its_instance_only(page: Page, world: World) -> None:
    """An actor signs in and sees the UOWs of its own instance."""
    sign_in(page, world, world.actor_token)
    expect(page.get_by_test_id("viewer")).to_have_text("signed in as actor")
    expect(page.locator("a.uow")).to_have_count(3)


def test_overview_logs_and_admin_events(page: Page, world: World) -> None:
    """The overview counts UOWs and shows the services; logs and admin events filter."""
    sign_in(page, world, world.auditor_token)
    page.click("text=Overview")
    expect(page.get_by_test_id("counts")).to_contain_text("PENDING 3")
    expect(page.get_by_test_id("services")).to_contain_text("flusher")
    expect(page.get_by_test_id("buffer")).to_contain_text("dropped since start")
    shot(page, world, "overview")
    page.click("text=Logs")
    page.select_option("select[name=type]", "STATE_TRANSITION")
    page.fill("input[name=uow]", world.plain_uow)
    page.click("#filter")
    rows = page.locator("[data-testid=rows] tbody tr")
    expect(rows).to_have_count(3)  # created, checked out, submitted
    expect(rows.filter(has_text="STATE_TRANSITION")).to_have_count(3)
    page.click("text=Admin events")
    page.select_option("select[name=action]", "ACTOR_REGISTERED")
    page.fill("input[name=instance]", world.instance)
    page.click("#filter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ACTOR_REGISTERED")


def test_the_workflow_drawing_counts_waiting_uows(page: Page, world: World) -> None:
    """The drawing shows roles, interactions, guardians and the UOWs waiting at each."""
    sign_in(page, world, world.actor_token)
    page.click("header >> text=Workflows")
    page.click("a.workflow")
    waiting = page.locator("g.interaction[data-name=ready_for_approval] text.detail")
    expect(waiting).to_have_text("3 waiting")
    expect(page.locator("g.interaction[data-name=submitted] text.detail")).to_have_text("0 waiting")
    expect(page.locator("g.role")).to_have_count(6)
    expect(page.locator("text.guardian", has_text="amount_router")).to_have_count(1)
    shot(page, world, "workflow")


def test_verification_finds_a_tampered_row(page: Page, world: World) -> None:
    """A reasoning rewritten behind the ledger's back is a finding linking to its row."""
    engine = make_engine(world.database_url, Settings(database_url=world.database_url))
    try:
        with append_only_disabled(engine), engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE uow_history SET reasoning = 'edited' WHERE uow_id = :u AND sequence = 2"
                ),
                {"u": world.tampered_uow},
            )
    finally:
        engine.dispose()
    sign_in(page, world, world.auditor_token)
    page.click("text=Verify")
    page.click("#verify")
    expect(page.get_by_test_id("result")).to_contain_text("finding(s)", timeout=60_000)
    link = page.locator(f"a[href$='/uows/{world.tampered_uow}#seq-2']").first
    expect(link).to_be_visible()
    expect(page.get_by_test_id("extends")).to_contain_text("does NOT extend")
    shot(page, world, "verification")
    link.click()
    expect(page.locator("#seq-2")).to_have_class("row tampered")
    expect(page.locator("#seq-2")).to_contain_text("NOT verified")


def test_sign_out_ends_the_session(page: Page, world: World) -> None:
    """Signing out returns to the sign-in page, and the old session no longer opens pages."""
    sign_in(page, world, world.auditor_token)
    page.click("#signout")
    expect(page).to_have_url(f"{world.console}/signin")
    page.goto(f"{world.console}/uows")
    expect(page).to_have_url(f"{world.console}/signin")


@contextmanager
def signed_in_client(world: World, token: str) -> Iterator[httpx.Client]:
    """Give an HTTP client holding a console session of ``token``."""
    with httpx.Client(base_url=world.console, timeout=30.0) as client:
        form = client.get("/signin")
        answer = client.post("/signin", data={"csrf": csrf_of(form.text), "token": token})
        assert answer.status_code == 303
        yield client


def csrf_of(page_text: str) -> str:
    """Return the CSRF token a page's forms carry."""
    found = CSRF_FIELD.search(page_text)
    assert found is not None
    return found.group(1)


def test_cookies_and_headers_are_strict(world: World) -> None:
    """The session cookie is HttpOnly and SameSite=Strict; pages forbid inline script."""
    with httpx.Client(base_url=world.console, timeout=30.0) as client:
        form = client.get("/signin")
        assert "script-src 'self'" in form.headers["content-security-policy"]
        assert "unsafe-inline" not in form.headers["content-security-policy"]
        assert form.headers["x-content-type-options"] == "nosniff"
        answer = client.post(
            "/signin", data={"csrf": csrf_of(form.text), "token": world.auditor_token}
        )
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith("chameleon_console=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP here; under TLS the cookie is Secure


def test_forms_need_the_session_token_and_this_origin(world: World) -> None:
    """A form without the CSRF token, or posted from another site, changes nothing (403)."""
    with signed_in_client(world, world.auditor_token) as client:
        token = csrf_of(client.get("/verify").text)
        assert client.post("/verify", data={"scope": "all"}).status_code == 403
        foreign = {"Origin": "https://evil.example"}
        refused = client.post("/verify", data={"csrf": token, "scope": "all"}, headers=foreign)
        assert refused.status_code == 403
        assert client.post("/signout", data={"csrf": "stale"}).status_code == 403
        assert client.get("/signout").status_code == 405
        assert client.get("/uows").status_code == 200  # still signed in


def test_sign_in_needs_its_form_token(world: World) -> None:
    """A sign-in posted without the form's own token (login CSRF) is refused."""
    with httpx.Client(base_url=world.console, timeout=30.0) as client:
        answer = client.post("/signin", data={"csrf": "forged", "token": world.auditor_token})
        assert answer.status_code == 403
        assert "chameleon_console" not in answer.headers.get("set-cookie", "")


def test_bad_filters_are_one_line_errors(world: World) -> None:
    """An unknown status, a bad time or a malformed attribute filter is a 400 page, no traceback."""
    with signed_in_client(world, world.auditor_token) as client:
        for query, said in (
            ({"status": "NAPPING"}, "unknown status &#39;NAPPING&#39;"),
            ({"since": "yesterday"}, "since: &#39;yesterday&#39; is not a date and time"),
            ({"attribute": "novalue"}, "write key=value"),
            ({"instance": "no-such-instance"}, "Error 404"),
        ):
            answer = client.get("/uows", params=query)
            assert answer.status_code == (404 if "instance" in query else 400), answer.text
            assert said in answer.text
            assert "Traceback" not in answer.text


def test_the_list_pages_with_a_cursor(world: World) -> None:
    """Two UOWs a page: the next link carries the filters and the cursor to the third."""
    with signed_in_client(world, world.auditor_token) as client:
        first = client.get("/uows", params={"instance": world.instance, "limit": 2})
        assert UOW_LINK.findall(first.text) == [world.plain_uow, world.hostile_uow]
        following = NEXT_LINK.search(first.text)
        assert following is not None
        second = client.get(html.unescape(following.group(1)).removeprefix("/ui"))
        assert UOW_LINK.findall(second.text) == [world.tampered_uow]
        assert NEXT_LINK.search(second.text) is None


def test_an_actor_cannot_open_another_instance(world: World) -> None:
    """An actor of another instance is refused this world's UOWs, lists and proofs (403)."""
    with ChameleonClient(world.server.url, world.server.admin_token) as admin:
        other = admin.create_instance(f"other-{secrets.token_hex(4)}")
        stranger = admin.register_actor(other, "stranger", "Stranger", "HUMAN")
    with signed_in_client(world, stranger.token) as client:
        assert client.get(f"/uows/{world.plain_uow}").status_code == 403
        assert client.get("/uows", params={"instance": world.instance}).status_code == 403
        listed = client.get("/uows")
        assert world.plain_uow not in listed.text
        token = csrf_of(listed.text)
        run = client.post("/verify", data={"csrf": token, "scope": "uow", "ref": world.plain_uow})
        assert run.status_code == 403
