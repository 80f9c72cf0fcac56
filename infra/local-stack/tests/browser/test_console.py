"""The local console in a real browser (Chromium driven by Playwright), as a newcomer uses it:
README's first command, then http://127.0.0.1:PORT/ — connect, watch prospects arrive live,
sync, disconnect. Run by scripts/test after the Rust tests (it needs target/debug/local-stack)."""

import os
import pathlib
import socket
import subprocess
import time

import pytest
from playwright.sync_api import expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[4]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALENDLY_", "FRONTEND_", "STORE", "QUEUE"))}
    env.update(PORT=str(port), LOCAL_SCHEDULE_SECONDS="3600", RUST_LOG="warn")
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    process = subprocess.Popen([str(target / "debug/local-stack")], env=env, stdout=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the local stack did not start")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_a_newcomer_connects_and_watches_prospects_arrive_live(stack):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="fr-FR")
        # The page runs under a strict Content-Security-Policy: anything it blocks is a defect.
        violations = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.goto(stack + "/")
        expect(page.get_by_test_id("status")).to_have_text("Non connecté")

        # The real OAuth round trip through the simulator, back to the console.
        page.get_by_test_id("connect").click()
        expect(page.get_by_test_id("status")).to_contain_text("camille@velvena.example", timeout=15_000)
        expect(page.get_by_test_id("status")).to_contain_text("webhook : ")
        expect(page.get_by_test_id("live")).to_have_attribute("data-state", "online")
        # The demo host's 5 bookings: 4 people (one booked twice), one note line per booking.
        expect(page.get_by_test_id("prospect-row")).to_have_count(4, timeout=15_000)
        # Whichever of John's two spellings is synced first names the prospect (the local part's
        # case is kept): match the address case-insensitively.
        john = page.locator('[data-testid="prospect-row"][data-email="john.doe@example.com" i]')
        expect(john.locator(".notes")).to_contain_text("Suivi 15min")
        expect(page.get_by_test_id("sync-progress")).to_have_attribute("value", "100")

        # A booking in Calendly: its signed webhook makes the row and the notification appear,
        # without any reload.
        page.evaluate("window.__sameDocument = true")
        page.fill("#sim-name", "Grace Hopper")
        page.fill("#sim-email", "grace@example.com")
        page.get_by_test_id("simulate-booking").click()
        grace = page.locator('[data-testid="prospect-row"][data-email="grace@example.com"]')
        expect(grace).to_be_visible(timeout=10_000)
        expect(grace).to_contain_text("calendly")
        expect(page.get_by_test_id("notification").first).to_contain_text("Grace Hopper")
        assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"

        # Cancelled in Calendly: the note and the notification follow, live.
        page.locator('[data-testid="booking-row"]', has_text="grace@example.com").get_by_role("button", name="Annuler").click()
        expect(grace.locator(".notes")).to_contain_text("annulé", timeout=10_000)
        expect(page.get_by_test_id("notification").first).to_contain_text("a annulé")
        # Marked as read through the API.
        page.get_by_test_id("notification").first.get_by_role("button").click()
        expect(page.get_by_test_id("notification").first).to_have_attribute("data-read", "true")

        # Yesterday's booking marked as a no-show from the CRM: at Calendly, and one note, live.
        alan = page.locator('[data-testid="prospect-row"][data-email="alan@example.org"]')
        alan_booking = page.locator('[data-testid="booking-row"]', has_text="alan@example.org")
        alan_booking.get_by_test_id("no-show").click()
        expect(alan.locator(".notes")).to_contain_text("Absence au rendez-vous Calendly", timeout=10_000)
        expect(alan_booking.locator(".booking-status")).to_contain_text("absent")
        expect(alan_booking.get_by_test_id("no-show")).to_have_text("Présent")
        # Upcoming bookings can't be marked yet.
        expect(page.locator('[data-testid="booking-row"]', has_text="marie@example.org").get_by_test_id("no-show")).to_have_count(0)

        # Erased (a GDPR request): the row, its bookings and notifications go, and say so.
        page.once("dialog", lambda dialog: dialog.accept())
        grace.get_by_test_id("erase").click()
        expect(page.get_by_test_id("privacy-result")).to_contain_text("Effacé : 1 prospect, 1 rendez-vous", timeout=10_000)
        expect(grace).to_have_count(0)
        expect(page.get_by_test_id("notification").filter(has_text="Grace Hopper")).to_have_count(0)
        expect(page.locator('[data-testid="booking-row"]', has_text="grace@example.com")).to_have_count(0)

        # Sync now: the progress bar goes to the end, with the job's figures.
        page.get_by_test_id("sync").click()
        expect(page.get_by_test_id("sync-figures")).to_contain_text("terminée", timeout=15_000)
        expect(page.get_by_test_id("sync-progress")).to_have_attribute("value", "100")

        (ROOT / "target").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "target/console.png"), full_page=True)

        # A phone's width still shows everything (no horizontal scroll of the page itself).
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

        page.get_by_test_id("disconnect").click()
        expect(page.get_by_test_id("status")).to_have_text("Non connecté")
        assert violations == [], violations
        browser.close()
