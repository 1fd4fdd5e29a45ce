"""HTTP pages and the join API; who may see and change what."""

from __future__ import annotations

import gzip
import json
import posixpath
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import override_settings
from django.urls import reverse
from django.utils.text import compress_string

from polls import actions, tally
from polls.models import QaConfig, Question
from polls.storage import served
from polls.tokens import read_participant_token
from tests.factories import (
    grant_polls_permissions,
    make_event,
    make_open_question,
    make_question,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(host):
    return make_event(code="TEST42", hosts=[host])


def test_home_redirects_a_typed_code_even_with_lookalikes(client, event):
    event.code = "KSF2018"
    event.save()
    response = client.get("/", {"code": " ksf-2o18 "})
    assert response.status_code == 302
    assert response["Location"] == "/e/KSF2018/"


def test_home_explains_an_unknown_code(client):
    response = client.get("/", {"code": "NOPE99"})
    assert response.status_code == 200
    assert "NOPE99" in response.content.decode()


def test_phone_page_renders(client, event):
    response = client.get(f"/e/{event.code}/")
    assert response.status_code == 200
    assert b"zp-config" in response.content


PHONE_BUDGET = 25_000  # bytes, gzipped: what a phone downloads to be ready to answer (issue 4)


@pytest.mark.parametrize("quiz", [False, True], ids=["poll", "quiz_and_qa"])
def test_the_phone_page_fits_its_budget_gzipped_with_everything_it_loads(client, event, quiz):
    """As served in production: the page gzipped by its view, the static files precompressed
    by the storage (at whitenoise's level 9, scripts and style sheets minified). Every module
    counts: the page's preloads, what they import, and every kind's renderer (the event's are
    preloaded, the others fetched if a question of their kind is added). The load test
    reports the figure as served. The worst case an event can produce: quiz mode (its module
    and strings) with the Q&A on."""
    if quiz:
        event.quiz = True
        event.save()
        QaConfig.objects.create(event=event, mode=QaConfig.Mode.OPEN)
    response = client.get(f"/e/{event.code}/", headers={"Accept-Encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip"
    html = gzip.decompress(response.content).decode()
    assert "zp-config" in html
    # Django's gzip pads each response with 1 to 100 random bytes against BREACH: the largest.
    sizes = {"page": len(compress_string(html.encode())) + 101}
    queue = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    # The worst case: an event with every kind, or one added during the show (loaded then).
    config = json.loads(re.search(r'id="zp-config" type="application/json">(.*?)<', html)[1])
    queue += [url.removeprefix("/static/") for url in config["later_kinds"].values()]
    if "quiz" in config:  # imported by the page itself (a preload too)
        queue.append(config["quiz"].removeprefix("/static/"))
    while queue:
        name = queue.pop()
        if name in sizes:
            continue
        data = served(name, Path(finders.find(name)).read_bytes())
        if name.endswith(".js"):  # ES module imports load too, from any folder
            folder = posixpath.dirname(name)
            imports = re.findall(rb"""(?:from|import)\s*\(?\s*['"](\.\.?/[^'"]+\.js)['"]""", data)
            queue += [posixpath.normpath(posixpath.join(folder, i.decode())) for i in imports]
        sizes[name] = len(gzip.compress(data, compresslevel=9))
    kinds = {f"polls/kinds/{kind}/phone.js" for kind in Question.Kind.values}
    expected = {"polls/phone.js", "polls/socket.js", "polls/phone.css"}
    if quiz:
        expected.add("polls/phone-quiz.js")
    assert expected | kinds <= set(sizes), sizes
    assert sum(sizes.values()) <= PHONE_BUDGET, (sum(sizes.values()), sizes)


def test_the_join_page_is_gzipped_too(client):
    response = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert response["Content-Encoding"] == "gzip"


# The join view reads the event through channels' database_sync_to_async, which closes a
# connection found inside a transaction: on PostgreSQL that is the test's own, so these tests
# commit for real (transaction=True), as the server does.
@pytest.mark.django_db(transaction=True)
def test_join_returns_a_token_bound_to_the_event_and_a_cookie(client, event):
    response = client.post(f"/api/e/{event.code}/join")
    assert response.status_code == 200
    token = response.json()["token"]
    participant = read_participant_token(token, event.code)
    assert participant is not None and participant.event_id == event.id
    assert read_participant_token(token, "OTHER7") is None
    assert response.cookies[f"zp_p_{event.code}"].value == token
    assert response.cookies[f"zp_p_{event.code}"]["httponly"]


@pytest.mark.django_db(transaction=True)
def test_join_unknown_code_is_a_json_404(client):
    response = client.post("/api/e/NOPE99/join")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_event"


def test_join_needs_post(client, event):
    assert client.get(f"/api/e/{event.code}/join").status_code == 405


def test_stage_needs_the_key(client, event):
    assert client.get(f"/e/{event.code}/stage/").status_code == 404
    assert client.get(f"/e/{event.code}/stage/", {"key": "wrong"}).status_code == 404
    response = client.get(f"/e/{event.code}/stage/", {"key": event.stage_key})
    assert response.status_code == 200
    content = response.content.decode()
    assert "<svg" in content
    assert event.code in content


def test_remote_needs_login_and_hosting(client, event, host):
    url = f"/e/{event.code}/host/"
    assert client.get(url).status_code == 302
    client.force_login(make_user("host-b"))
    assert client.get(url).status_code == 403
    assert client.post(url, {"action": "next"}).status_code == 403
    client.force_login(host)
    assert client.get(url).status_code == 200


def test_host_of_event_a_cannot_touch_event_b(client, host):
    other_host = make_user("host-b")
    event_b = make_event(code="EVENTB", hosts=[other_host])
    question_b = make_open_question(event_b)
    client.force_login(host)
    assert client.get(f"/e/{event_b.code}/host/").status_code == 403
    assert client.post(f"/e/{event_b.code}/host/", {"action": "close"}).status_code == 403
    assert client.get(reverse("admin:polls_event_change", args=[event_b.id])).status_code in (
        302,
        403,
        404,
    )
    assert client.get(reverse("admin:polls_question_change", args=[question_b.id])).status_code in (
        302,
        403,
        404,
    )
    response = client.post(
        reverse("admin:polls_question_changelist"),
        {"action": "close_questions", "_selected_action": [question_b.id]},
    )
    assert response.status_code in (200, 302, 403)
    question_b.refresh_from_db()
    assert question_b.state == Question.State.OPEN
    listing = client.get(reverse("admin:polls_event_changelist")).content.decode()
    assert "EVENTB" not in listing


def test_remote_runs_the_show(client, event, host):
    first = make_question(event)
    second = make_question(event, prompt="Second?")
    client.force_login(host)
    url = f"/e/{event.code}/host/"
    client.post(url, {"action": "next"})
    event.refresh_from_db()
    assert event.current_question == first
    client.post(url, {"action": "open"})
    first.refresh_from_db()
    assert first.state == Question.State.OPEN
    assert tally.read_snapshot_sync(first.id) is not None
    client.post(url, {"action": "show_results"})
    first.refresh_from_db()
    assert first.show_results
    client.post(url, {"action": "next"})
    event.refresh_from_db()
    first.refresh_from_db()
    assert event.current_question == second
    assert first.state == Question.State.CLOSED  # only the current question stays open
    response = client.post(url, {"action": "bogus"}, follow=True)
    assert response.status_code == 200


def test_the_remote_s_q_and_a_section_comes_alone_for_its_script(client, event, host):
    """remote-qa.js posts with part=qa and is sent the section alone, with the press's
    messages; a background copy (no done) leaves the messages for the page."""
    client.force_login(host)
    url = f"/e/{event.code}/host/"
    response = client.post(url, {"action": "qa_moderated", "part": "qa"})
    assert response["Location"] == f"{url}?part=qa&done=1"
    part = client.get(response["Location"]).content.decode()
    assert part.lstrip().startswith('<section class="hs-qa" id="hs-qa"') and "<html" not in part
    assert 'data-mode="moderated"' in part and 'value="qa_stage_on"' in part
    refused = client.post(url, {"action": "qa_hide", "item": "999999", "part": "qa"}, follow=True)
    assert 'class="hs-error"' in refused.content.decode()
    client.post(url, {"action": "qa_hide", "item": "999999", "part": "qa"})
    assert 'class="hs-error"' not in client.get(url, {"part": "qa"}).content.decode()
    assert 'class="hs-error"' in client.get(url).content.decode()  # on the page it was for
    # Without the script a Q&A button reloads the page at the section.
    assert client.post(url, {"action": "qa_open"})["Location"] == f"{url}#hs-qa"
    assert client.post(url, {"action": "next"})["Location"] == url
    client.force_login(make_user("host-b"))
    assert client.get(url, {"part": "qa"}).status_code == 403


def test_opening_a_choice_question_without_options_is_refused(client, event, host):
    question = make_question(event, options=("only one",))
    client.force_login(host)
    client.post(f"/e/{event.code}/host/", {"action": "next"})
    response = client.post(f"/e/{event.code}/host/", {"action": "open"}, follow=True)
    question.refresh_from_db()
    assert question.state == Question.State.DRAFT
    assert "two options" in response.content.decode()


def test_remote_reveals_research_and_hides_words(client, event, host):
    from benchmarks.models import Figure, Study
    from polls.models import QuestionFigure

    split = make_question(event, kind="split", options=(), split_a_label="self-service")
    study = Study.objects.create(title="Benchmark", publisher="KIRC", year=2018)
    figure = Figure.objects.create(study=study, label="Share", metric="split", year=2018, value=39)
    QuestionFigure.objects.create(question=split, figure=figure)
    cloud = make_question(event, kind="text", options=())
    client.force_login(host)
    url = f"/e/{event.code}/host/"
    client.post(url, {"action": "next"})
    client.post(url, {"action": "reveal"})
    split.refresh_from_db()
    assert split.revealed
    client.post(url, {"action": "unreveal"})
    split.refresh_from_db()
    assert not split.revealed
    client.post(url, {"action": "next"})
    response = client.post(url, {"action": "reveal"}, follow=True)
    assert "no research figure" in response.content.decode()
    client.post(url, {"action": "hide_word", "word": "kut"})
    assert tally.hidden_words(cloud.id) == ["kut"]
    page = client.get(url)
    assert page.context["hidden_words"] == ["kut"]
    client.post(url, {"action": "show_word", "word": "kut"})
    assert tally.hidden_words(cloud.id) == []


def test_a_non_host_cannot_reveal_or_hide(client, event):
    question = make_open_question(event)
    client.force_login(make_user("host-b"))
    for action in ("reveal", "hide_word"):
        assert (
            client.post(f"/e/{event.code}/host/", {"action": action, "word": "x"}).status_code
            == 403
        )
    question.refresh_from_db()
    assert not question.revealed


@pytest.mark.django_db(transaction=True)
def test_every_page_has_a_strict_content_security_policy(client, event, host):
    client.force_login(host)
    pages = [
        "/",
        f"/e/{event.code}/",
        f"/e/{event.code}/stage/?key={event.stage_key}",
        f"/e/{event.code}/host/",
        "/admin/",
    ]
    for page in pages:
        policy = client.get(page)["Content-Security-Policy"]
        assert "script-src 'self';" in policy and "unsafe-inline" not in policy, page
    api = client.post(f"/api/e/{event.code}/join")
    assert "default-src 'self'" in api["Content-Security-Policy"]


class FakeClock:
    def __init__(self, start: float):
        self.now = start

    def time(self) -> float:
        return self.now


@pytest.mark.parametrize("action", actions.HOST_ACTIONS)
def test_every_remote_action_of_a_host_of_another_event_is_refused(client, host, action):
    event_b = make_event(code="EVENTB", hosts=[make_user("host-b")])
    question = make_open_question(event_b)
    client.force_login(host)
    response = client.post(f"/e/{event_b.code}/host/", {"action": action, "word": "x"})
    assert response.status_code == 403
    question.refresh_from_db()
    event_b.refresh_from_db()
    assert (question.state, question.show_results, question.revealed) == ("open", False, False)
    assert event_b.current_question == question


def test_a_host_of_another_event_cannot_rotate_its_stage_key_or_delete_it(client, host):

    grant_polls_permissions(host)
    event_b = make_event(code="EVENTB", hosts=[make_user("host-b")])
    key = event_b.stage_key
    client.force_login(host)
    client.post(
        reverse("admin:polls_event_changelist"),
        {"action": "rotate_stage_key", "_selected_action": [event_b.id]},
    )
    client.post(reverse("admin:polls_event_delete", args=[event_b.id]), {"post": "yes"})
    event_b.refresh_from_db()
    assert event_b.stage_key == key


def test_open_text_is_escaped_in_admin(client, event, host):
    from django.utils import timezone

    from polls.models import Answer

    grant_polls_permissions(host)
    question = make_question(event, kind="text", options=())
    Answer.objects.create(
        question=question,
        participant="p1",
        value="<script>alert(1)</script>",
        answered_at=timezone.now(),
        log_id="1-0",
    )
    client.force_login(host)
    page = client.get(reverse("admin:polls_answer_changelist")).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def post_join_over_asgi(code: str, headers=None):
    """The join as Daphne serves it: through config.asgi, where polls.join_api answers it."""
    from channels.testing import HttpCommunicator

    from config.asgi import application

    communicator = HttpCommunicator(
        application, "POST", f"/api/e/{code}/join", headers=headers or [(b"host", b"testserver")]
    )
    response = await communicator.get_response(timeout=5)
    headers = {}
    for name, value in response["headers"]:
        headers.setdefault(name.decode().lower(), []).append(value.decode())
    return response["status"], headers, response["body"]


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_join_answers_as_the_django_view_does(event):
    import json

    status, headers, body = await post_join_over_asgi(event.code)
    assert status == 200 and headers["content-type"] == ["application/json"]
    assert headers["content-length"] == [str(len(body))]
    token = json.loads(body)["token"]
    assert read_participant_token(token, event.code).event_id == event.id
    (cookie,) = headers["set-cookie"]
    assert cookie.startswith(f"zp_p_{event.code}={token};")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=" in cookie
    assert "default-src 'self'" in headers["content-security-policy"][0]
    assert headers["x-content-type-options"] == ["nosniff"]
    # Lookalike characters are read as the code they look like (I/L -> 1, O -> 0).
    assert (await post_join_over_asgi("test-42"))[0] == 200


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_join_refuses_clearly_in_the_phone_language(event, monkeypatch):
    import json

    from polls import joinguard

    monkeypatch.setattr(joinguard.time, "time", FakeClock(1_800_000_000.0).time)

    status, _headers, body = await post_join_over_asgi("NOPE99")
    assert status == 404
    assert json.loads(body)["error"] == {
        "code": "unknown_event",
        "message": "There is no session with this code.",
    }
    dutch = [(b"host", b"testserver"), (b"accept-language", b"nl-NL,nl;q=0.9,en;q=0.5")]
    status, _headers, body = await post_join_over_asgi("NOPE99", dutch)
    assert status == 404 and json.loads(body)["error"]["message"] != (
        "There is no session with this code."
    )
    with override_settings(ZP_JOIN_FREE_PER_MINUTE=1):
        assert (await post_join_over_asgi(event.code))[0] == 200
        status, _headers, body = await post_join_over_asgi(event.code, dutch)
    assert status == 428 and json.loads(body)["error"]["code"] == "work_required"
    assert json.loads(body)["error"]["message"] != "Your phone is checking in; one moment, please."
    assert (await post_join_over_asgi(event.code, [(b"host", b"evil.example")]))[0] == 400


@pytest.mark.django_db(transaction=True)
async def test_joins_under_asgi_never_reach_django_and_other_requests_do(event):
    from channels.testing import HttpCommunicator

    from polls.join_api import JoinFastPath

    passed_on = []

    async def django_stand_in(scope, receive, send):
        passed_on.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = JoinFastPath(django_stand_in)
    host = [(b"host", b"testserver")]
    join = HttpCommunicator(app, "POST", f"/api/e/{event.code}/join", headers=host)
    assert (await join.get_response(timeout=5))["status"] == 200
    for method, path in [("GET", f"/api/e/{event.code}/join"), ("POST", "/api/e/X/join/extra")]:
        other = HttpCommunicator(app, method, path, headers=host)
        assert (await other.get_response(timeout=5))["status"] == 418
    assert passed_on == [("GET", f"/api/e/{event.code}/join"), ("POST", "/api/e/X/join/extra")]


@pytest.mark.django_db(transaction=True)
async def test_the_asgi_join_cookie_is_secure_behind_a_tls_proxy(event):
    proxied = [(b"host", b"testserver"), (b"x-forwarded-proto", b"https")]
    with override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=3600
    ):
        status, headers, _body = await post_join_over_asgi(event.code, proxied)
        assert status == 200 and "Secure" in headers["set-cookie"][0]
        assert headers["strict-transport-security"] == ["max-age=3600"]
        status, headers, _body = await post_join_over_asgi(event.code)
        assert status == 200 and "Secure" not in headers["set-cookie"][0]


def test_the_phone_preloads_its_event_s_kinds_and_names_the_others_for_later(event):
    from polls.views import phone_kind_modules

    make_question(event, kind=Question.Kind.SCALE)
    make_question(event, kind=Question.Kind.TEXT)
    modules = phone_kind_modules(event)
    assert set(modules["kinds"]) == set(event.questions.values_list("kind", flat=True))
    assert {Question.Kind.SCALE, Question.Kind.TEXT} <= set(modules["kinds"])
    assert set(modules["kinds"]) | set(modules["later_kinds"]) == set(Question.Kind.values)
    assert not set(modules["kinds"]) & set(modules["later_kinds"])
