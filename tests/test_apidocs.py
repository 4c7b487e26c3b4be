"""The API in a browser: Swagger UI at /docs, from the package's own files, and a call tried from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from dev.stack import web_environment
from tests.test_e2e import running_service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "a-token-of-at-least-16-characters"


def docs_app(redis_url: str, tmp_path: Path, **settings: str) -> Flask:
    """The app serving the example handlers (no worker needed: nothing here is called)."""
    return create_app({"REDIS_URL": redis_url, "FLOWHOOK_STATE_FILE": str(tmp_path / "run.json"), **settings})


def test_the_page_is_off_unless_switched_on(redis_url: str, tmp_path: Path) -> None:
    assert docs_app(redis_url, tmp_path).test_client().get("/docs/").status_code == 404
    assert docs_app(redis_url, tmp_path, FLOWHOOK_API_DOCS="").test_client().get("/docs/").status_code == 404


def test_the_page_and_its_scripts_come_from_the_service(redis_url: str, tmp_path: Path) -> None:
    client = docs_app(redis_url, tmp_path, FLOWHOOK_API_DOCS="true").test_client()
    assert client.get("/docs").headers["Location"].endswith("/docs/")  # the README's link, and a bare /docs
    page = client.get("/docs/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '"url": "/openapi.json"' in html
    assert "http://" not in html.replace("http://localhost/docs/", "")  # no CDN: every file is ours
    assert "https://" not in html
    # The browser is told so too: nothing from elsewhere, no framing.
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    with client.get("/docs/swagger-ui-bundle.js") as script:
        assert script.status_code == 200
        assert len(script.get_data()) > 100_000  # Swagger UI itself, not a loader of it
    with client.get("/docs/swagger-ui.css") as style:
        assert style.status_code == 200
    assert client.get("/docs/../app.py").status_code == 404


def test_make_run_serves_the_page_unless_its_settings_say_otherwise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FLOWHOOK_API_DOCS", raising=False)
    assert web_environment()["FLOWHOOK_API_DOCS"] == "true"
    monkeypatch.setenv("FLOWHOOK_API_DOCS", "")  # as .env.example has it
    assert web_environment()["FLOWHOOK_API_DOCS"] == "true"
    monkeypatch.setenv("FLOWHOOK_API_DOCS", "false")
    assert web_environment()["FLOWHOOK_API_DOCS"] == "false"
    monkeypatch.delenv("FLOWHOOK_API_DOCS")
    env_file = tmp_path / ".env"
    env_file.write_text("FLOWHOOK_API_DOCS=false\n")
    monkeypatch.setenv("MAKE_RUN_ENV_FILE", str(env_file))
    assert web_environment()["FLOWHOOK_API_DOCS"] == "false"  # .env's choice, which the environment would override


@pytest.mark.e2e
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: `make test` installs it as root (apt-get install chromium)")
def test_a_browser_shows_every_handler_and_tries_a_call_with_a_token(tmp_path: Path) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with running_service(tmp_path, FLOWHOOK_TOKENS=TOKEN) as service, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        elsewhere: list[str] = []
        page.on("request", lambda asked: None if asked.url.startswith(service.url) else elsewhere.append(asked.url))
        page.goto(f"{service.url}/docs")  # redirected to /docs/

        for handler in ("echo", "order_lookup", "sleep"):
            page.get_by_text(f"/webservice/{handler}", exact=True).wait_for(timeout=15_000)
        page.screenshot(path=str(tmp_path / "docs.png"), full_page=True)

        # Authorize: the token goes with every call tried from the page, as LoyJoy's module sends it.
        page.get_by_role("button", name="Authorize").first.click()
        page.locator("#auth-bearer-value").fill(TOKEN)
        page.locator(".auth-container").filter(has=page.locator("#auth-bearer-value")).locator(
            "button.authorize"
        ).click()
        page.locator(".close-modal").click()

        operation = page.locator("#operations-handlers-post_webservice_echo")
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        body = {"process_instance_id": "docs-1", "variables": {"firstname": "Ada"}}
        operation.locator("textarea.body-param__text").fill(json.dumps(body))
        operation.get_by_role("button", name="Execute").click()

        response = operation.locator(".live-responses-table .response")
        response.locator(".response-col_status").get_by_text("200").wait_for(timeout=15_000)
        answer = json.loads(response.locator(".response-col_description pre").first.inner_text())
        page.screenshot(path=str(tmp_path / "call.png"), full_page=True)
        browser.close()

    variables = {"firstname": "Ada", "echo_status": "done", "echo_job": "", "echo_error": ""}
    assert answer == {"data": {"variables": variables}}
    assert elsewhere == []  # the page asked nothing of any other address
