"""The browser chain works: a FastAPI app served in this process, opened and clicked in headless chromium."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from playwright.async_api import Page, expect

from telephony.replay.in_process import serve_in_process

PAGE = """<!doctype html>
<html>
  <head><meta charset="utf-8"><title>handoff smoke</title></head>
  <body>
    <p id="status">waiting</p>
    <button id="go" type="button">Go</button>
    <script>
      document.getElementById("go").addEventListener("click", () => {
        document.getElementById("status").textContent = "clicked " + (1 + 1);
      });
    </script>
  </body>
</html>
"""


def smoke_app() -> FastAPI:
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return PAGE

    return app


async def test_click_changes_the_page_and_screenshots(page: Page, tmp_path: Path) -> None:
    async with serve_in_process(smoke_app()) as base_url:
        response = await page.goto(base_url + "/")
        assert response is not None and response.ok
        await expect(page).to_have_title("handoff smoke")
        await expect(page.locator("#status")).to_have_text("waiting")

        await page.get_by_role("button", name="Go").click()

        await expect(page.locator("#status")).to_have_text("clicked 2")
        shot = tmp_path / "smoke.png"
        await page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 0
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
