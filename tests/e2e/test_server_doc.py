"""docs/server.md's curl walk runs as written: each request, its status, every route covered.

The shell in the doc is read here, not run by a shell: each ``curl`` line becomes the same
HTTP request through httpx, ``VAR=$(curl ... | jq -r PATH)`` keeps the value the doc's
``jq`` would pick, and the ``# NNN`` line under a request is the status it must answer.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import httpx
from http_world import AUDITOR_TOKEN, Documented, served

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "server.md"
SECTION = "## Every route with curl"
CAPTURE = re.compile(r"^(\w+)=\$\((curl .*) \| jq -r (\S+)\)$")
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def commands(text: str) -> list[tuple[str, int | None]]:
    """Return the section's shell lines (continuations joined), each with its noted status."""
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    found: list[tuple[str, int | None]] = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.DOTALL):
        for raw in block.replace("\\\n", " ").splitlines():
            line = raw.strip()
            status = re.fullmatch(r"# (\d{3})", line)
            if status:
                assert found, f"a status before any request: {line}"
                assert found[-1][1] is None, f"two statuses under one request: {line}"
                found[-1] = (found[-1][0], int(status.group(1)))
            elif line:
                found.append((line, None))
    return found


def expand(word: str, env: dict[str, str]) -> str:
    """Replace $VAR and ${VAR} as the shell would (an unset variable is an error here)."""
    return VARIABLE.sub(lambda m: env[m.group(1) or m.group(2)], word)


def request_of(line: str, env: dict[str, str]) -> dict[str, Any]:
    """Translate one curl command into httpx request arguments."""
    words = [expand(word, env) for word in shlex.split(line)]
    assert words[0] == "curl", line
    method, headers, body, url = None, {}, None, None
    rest = iter(words[1:])
    for word in rest:
        if word == "-s":
            continue
        if word == "-X":
            method = next(rest)
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(rest).encode()
        elif word == "--data-binary":
            body = (ROOT / next(rest).removeprefix("@")).read_bytes()
        else:
            assert not word.startswith("-"), f"unsupported curl option {word} in: {line}"
            url = word
    assert url is not None, line
    method = method or ("POST" if body is not None else "GET")
    return {"method": method, "url": url, "headers": headers, "content": body}


def jq(document: Any, path: str) -> str:
    """Pick a value by a jq path such as ``.items[0].actor_id``, as ``jq -r`` prints it."""
    value = document
    for name, index in re.findall(r"\.(\w+)|\[(\d+)\]", path.strip("'")):
        value = value[name] if name else value[int(index)]
    return "null" if value is None else str(value)


def test_curl_walk_runs(database_url: str, tmp_path: Path) -> None:
    """Every request of the walk answers its noted status, and every route has an example."""
    walk = commands(DOC.read_text(encoding="utf-8"))
    assert len(walk) == 91
    with served(database_url, tmp_path) as (server, http):
        documented = Documented(http.get("/openapi.json").json())
        env = {
            "CHAMELEON_ADMIN_TOKEN": server.admin_token,
            "CHAMELEON_AUDITOR_TOKEN": AUDITOR_TOKEN,
        }
        covered = set()
        for line, status in walk:
            if line.startswith("export "):
                for assignment in shlex.split(line)[1:]:
                    name, _, value = assignment.partition("=")
                    env[name] = server.url if name == "CHAMELEON" else expand(value, env)
                continue
            capture = CAPTURE.match(line)
            request = request_of(capture.group(2) if capture else line, env)
            response = http.request(**request)
            assert status is not None, f"no status noted under: {line}"
            assert response.status_code == status, f"{line}\n-> {response.text}"
            if capture:
                env[capture.group(1)] = jq(json.loads(response.text), capture.group(3))
            path = httpx.URL(request["url"]).path
            covered.add(documented.operation_of(request["method"], path))
        assert set(documented.operations) - covered == set()
