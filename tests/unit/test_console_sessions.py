"""Console sessions expire and end on sign-out; timelines flatten diffs; templates escape."""

from __future__ import annotations

import uuid
from pathlib import Path

from chameleon_workflow import console
from chameleon_workflow.console.backend import Viewer
from chameleon_workflow.console.data import Change, changes_of, error_of, guardian_of
from chameleon_workflow.console.sessions import SessionStore
from chameleon_workflow.console.web import environment


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_at_its_expiry() -> None:
    """A session is found until its time-to-live passes, then never again."""
    clock = Clock()
    store = SessionStore(60.0, clock)
    opened = store.open(Viewer("auditor"))
    clock.now += 59.0
    assert store.find(opened.session_id) == opened
    clock.now += 1.0
    assert store.find(opened.session_id) is None


def test_signing_out_forgets_the_session() -> None:
    """A closed session is not found, and other sessions stay."""
    store = SessionStore(60.0, Clock())
    first, second = store.open(Viewer("admin")), store.open(Viewer("auditor"))
    store.close(first.session_id)
    assert store.find(first.session_id) is None
    assert store.find(second.session_id) == second
    assert store.find(None) is None
    assert store.find("") is None


def test_a_session_accepts_only_its_own_csrf_token() -> None:
    """The CSRF check wants this session's token exactly."""
    store = SessionStore(60.0, Clock())
    one, other = store.open(Viewer("admin")), store.open(Viewer("admin"))
    assert one.csrf_ok(one.csrf) is True
    assert one.csrf_ok(other.csrf) is False
    assert one.csrf_ok(None) is False
    assert one.csrf_ok("") is False


def test_an_actor_reads_its_own_instance_only() -> None:
    """An actor's scope is its instance; the admin and the auditor read everything."""
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    actor = Viewer("actor", uuid.uuid4(), mine)
    assert (actor.scope, actor.may_read(mine), actor.may_read(theirs)) == (mine, True, False)
    assert (Viewer("auditor").scope, Viewer("auditor").may_read(theirs)) == (None, True)


def test_a_stored_diff_becomes_old_to_new_changes() -> None:
    """Added, changed and removed attributes each become one change, in key order."""
    diff = {
        "added": {"b": 2, "a": 1},
        "changed": {"c": {"old": 3, "new": 4}},
        "removed": {"d": "x"},
    }
    assert changes_of(diff) == (
        Change("a", None, 1, "added"),
        Change("b", None, 2, "added"),
        Change("c", 3, 4, "changed"),
        Change("d", "x", None, "removed"),
    )
    assert changes_of(None) == ()


def test_the_guardian_comes_from_the_recorded_route() -> None:
    """A row's guardian is the one its route names, else None."""
    assert guardian_of({"route": {"guardian": "amount_router"}}) == "amount_router"
    assert guardian_of({"guardian": "fresh_invoice"}) == "fresh_invoice"
    assert guardian_of({"route": {"guardian": None}}) is None
    assert guardian_of("text") is None


def test_templates_escape_every_value() -> None:
    """Markup in a value renders as text even in a template written without a filter."""
    env = environment()
    rendered = env.from_string("<p>{{ value }}</p><p>{{ value|json }}</p>").render(
        value='<script>x</script>"{{7*7}}'
    )
    assert rendered == (
        "<p>&lt;script&gt;x&lt;/script&gt;&#34;{{7*7}}</p>"
        "<p>&#34;&lt;script&gt;x&lt;/script&gt;\\&#34;{{7*7}}&#34;</p>"
    )


def test_no_template_turns_escaping_off() -> None:
    """No template marks a value safe or turns autoescaping off."""
    folder = Path(console.__file__).parent / "templates"
    names = sorted(path.name for path in folder.glob("*.html"))
    assert "timeline.html" in names
    for path in folder.glob("*.html"):
        source = path.read_text()
        assert "|safe" not in source.replace(" ", ""), path.name
        assert "autoescape" not in source, path.name
        assert "<script>" not in source, path.name


def test_a_rows_error_comes_from_its_metadata() -> None:
    """A row's error is the one its metadata, a guardian's errors or its route records."""
    assert error_of({"error": "boom"}) == "boom"
    assert error_of({"guardian": "g", "errors": ["too old"]}) == ["too old"]
    assert error_of({"route": {"guardian": "r", "error": "amount is text"}}) == "amount is text"
    assert error_of({"route": {"guardian": "r", "error": None}}) is None
    assert error_of(None) is None
