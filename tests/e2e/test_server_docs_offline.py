"""/docs works on a host without internet access: every page and asset comes from the server."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from http_world import served

#: Every URL an HTML page can make a browser load, and every absolute URL in its script.
REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""")
ABSOLUTE = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


def test_docs_reference_no_other_host(sqlite_template: Path, tmp_path: Path) -> None:
    """The docs page, its scripts and styles load from the server itself; nothing from a CDN."""
    database = tmp_path / "chameleon.db"
    shutil.copyfile(sqlite_template, database)
    with served(f"sqlite:///{database}", tmp_path) as (server, http):
        page = http.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        references = [a or b for a, b in REFERENCES.findall(page.text)]
        assert sorted(references) == [
            "/docs/assets/favicon-32x32.png",
            "/docs/assets/swagger-ui-bundle.js",
            "/docs/assets/swagger-ui.css",
        ]
        assert ABSOLUTE.findall(page.text) == []
        assert '"validatorUrl": null' in page.text  # no request to the online validator
        for reference in references:
            url = urljoin(f"{server.url}/docs", reference)
            assert urlsplit(url).netloc == urlsplit(server.url).netloc
            asset = http.get(url)
            assert (asset.status_code, len(asset.content) > 0) == (200, True), reference
        assert http.get("/openapi.json").json()["paths"]
        assert http.get("/redoc").status_code == 404  # the CDN-based page is not served
