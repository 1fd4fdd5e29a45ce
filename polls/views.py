"""HTTP faces: the join form, the phone page, the join API, the stage and the remote control."""

from __future__ import annotations

import functools
import json

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_POST

from . import actions, attendees, caches, joinguard, kinds, qa, tally, voice
from .clientaddr import client_address
from .codes import normalise_code
from .consistency import set_aside_of
from .logs import log_refusal
from .models import Event, Question
from .stagekeys import stage_key_matches
from .state import look_digest
from .tokens import (
    attendee_participant_id,
    issue_participant_token,
    new_participant_id,
    participant_cookie_name,
)


def request_address(request: HttpRequest) -> str:
    return client_address(
        request.META.get("HTTP_X_FORWARDED_FOR", ""), request.META.get("REMOTE_ADDR")
    )


# The join pages carry no secret (no CSRF token, no session data), so compressing them gives
# BREACH nothing to find, and phones on congress Wi-Fi load them in far fewer bytes.
@gzip_page
def home(request: HttpRequest) -> HttpResponse:
    typed = request.GET.get("code", "")
    error = None
    if typed:
        code = normalise_code(typed)
        if Event.objects.filter(code=code).exists():
            return redirect("polls:phone", code=code)
        error = _("No session with the code %(code)s. Check the code on the screen.") % {
            "code": code
        }
    return render(request, "polls/home.html", {"code": typed, "error": error})


def kind_modules(face: str) -> dict[str, str]:
    """Each question kind's renderer for one face (phone, stage, remote): the URL of
    static/polls/kinds/<kind>/<face>.js, hashed in production. The page preloads and imports
    them all, so it never names a kind itself."""
    return {kind.name: static(kind.front_modules()[face]) for kind in kinds.REGISTERED}


@functools.cache
def _kind_style_paths(face: str) -> tuple[str, ...]:
    paths = (kind.front_style(face) for kind in kinds.REGISTERED)
    return tuple(path for path in paths if finders.find(path))


def kind_styles(face: str) -> list[str]:
    """The style sheets of the kinds that bring their own for this face, after the page's."""
    return [static(path) for path in _kind_style_paths(face)]


def _event_or_404(code: str) -> Event:
    normalised = normalise_code(code)
    return get_object_or_404(Event, code=normalised)


@gzip_page
def phone(request: HttpRequest, code: str) -> HttpResponse:
    event = _event_or_404(code)
    if event.code != code:  # a typed variant: the canonical URL, keeping a badge's ?a=
        query = request.GET.urlencode()
        target = reverse("polls:phone", args=[event.code])
        return redirect(f"{target}?{query}" if query else target)
    return render(request, "polls/phone.html", phone_page_context(event))


def phone_page_context(event: Event) -> dict:
    """All the phone page shows, in the active language: nothing of the request is in it, so
    the bare path in front of Django (``polls.transport.phone_page``) renders it once."""
    config = {
        "code": event.code,
        "ws_path": f"/ws/e/{event.code}/",
        "join_url": reverse("polls:join", args=[event.code]),
        "lang": translation.get_language(),
        # Attendee-list events ask for a personal code (or take it from a badge's ?a= link).
        "attendees": event.voice == Event.Voice.ATTENDEES,
        **phone_kind_modules(event),
    }
    if event.quiz:  # the quiz's module only where it plays (the page's budget)
        config["quiz"] = static("polls/phone-quiz.js")
    return {"event": event, "config": config}


def phone_kind_modules(event: Event) -> dict[str, dict[str, str]]:
    """The renderers of the kinds the event's questions have, preloaded with the page (a new
    question never waits for a fetch), and the others' URLs, fetched only if a question of
    such a kind is added during the show. A hall's first visit is a request per module."""
    modules = kind_modules("phone")
    used = set(event.questions.values_list("kind", flat=True)) & set(modules)
    return {
        "kinds": {kind: url for kind, url in modules.items() if kind in used},
        "later_kinds": {kind: url for kind, url in modules.items() if kind not in used},
    }


def _json_error(
    code: str, message: str, status: int, extra: dict | None = None, **headers
) -> JsonResponse:
    body = {"error": {"code": code, "message": message}, **(extra or {})}
    response = JsonResponse(body, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


MAX_JOIN_BODY_BYTES = 2048
# code -> event, cached per process for the join storm and dropped the moment a host's change
# or a deletion is published (polls.caches): a join asks nothing but a dict.
_event_for_join = caches.event_for_join


def parse_join_body(raw: bytes, content_type: str) -> dict | None:
    """A join's JSON body (``work``, ``attendee``), {} when it has none; None when it claims to
    be JSON and is not an object. A page from before this field existed posts nothing."""
    if content_type.split(";")[0].strip().lower() != "application/json" or not raw.strip():
        return {}
    if len(raw) > MAX_JOIN_BODY_BYTES:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


@csrf_exempt  # no session is involved: the response is a fresh anonymous token
@require_POST
async def join(request: HttpRequest, code: str) -> JsonResponse:
    """Served by Django under WSGI and in Django's test client; under ASGI ``polls.join_api``
    answers the same URL with the same ``join_response`` without the middleware stack."""
    return await join_response(
        request_address(request),
        code,
        secure=request.is_secure(),
        raw_body=request.body,
        content_type=request.content_type or "",
    )


def _join_refusal(
    language: str | None, code: str, message, status: int, extra: dict | None = None
) -> JsonResponse:
    """A refused join, its message in ``language`` (None: the request's, as Django chose it).
    Only refusals are translated: a free join, nearly all of a storm, never touches gettext."""
    if language is None:
        return _json_error(code, str(message), status, extra)
    with translation.override(language):
        return _json_error(code, str(message), status, extra)


async def join_response(
    address: str,
    code: str,
    secure: bool,
    raw_body: bytes = b"",
    content_type: str = "",
    language: str | None = None,
) -> JsonResponse:
    event = await _event_for_join(normalise_code(code))
    if event is None:
        log_refusal("join", "unknown_event", sender=address, event=normalise_code(code))
        message = gettext_lazy("There is no session with this code.")
        return _join_refusal(language, "unknown_event", message, 404)
    body = parse_join_body(raw_body, content_type)
    if body is None:
        log_refusal("join", "bad_json", sender=address, event=event[1])
        message = gettext_lazy("The message is not valid JSON.")
        return _join_refusal(language, "bad_json", message, 400)
    event_id, event_code, voice = event
    work = await joinguard.work_for_join(address, body.get("work"))
    if work is not None:
        log_refusal("join", "work_required", sender=address, event=event_code)
        message = gettext_lazy("Your phone is checking in; one moment, please.")
        return _join_refusal(language, "work_required", message, 428, {"work": work.payload()})
    token = await _token_for(event_id, event_code, voice, address, body.get("attendee"))
    if token is None:
        log_refusal("join", "attendee_code", sender=address, event=event_code)
        message = gettext_lazy(
            "This session is for registered attendees: enter the personal code from your badge."
        )
        return _join_refusal(language, "attendee_code", message, 403)
    response = JsonResponse({"token": token})
    response.set_cookie(
        participant_cookie_name(event_code),
        token,
        max_age=settings.ZP_PARTICIPANT_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    return response


async def _token_for(
    event_id: int, event_code: str, voice: str, address: str, typed: object
) -> str | None:
    """A new participant's token: on an open event a fresh participant (its id carries the
    join second and address tag), on an attendee list the code's one participant, or None for
    a code that is not a valid, unrevoked one of this event."""
    if voice != Event.Voice.ATTENDEES:
        return issue_participant_token(event_id, event_code, new_participant_id(address))
    attendee_id = (
        await attendees.attendee_for_join(event_id, typed) if isinstance(typed, str) else None
    )
    if attendee_id is None:
        return None
    participant_id = attendee_participant_id(attendee_id)
    return issue_participant_token(event_id, event_code, participant_id, attendee_id)


def qr_svg(url: str) -> str:
    qr = segno.make(url, error="m")
    # Dark modules on a light quiet zone scan best, whatever the page theme is.
    return qr.svg_inline(scale=1, dark="#000", light="#fff", border=2, omitsize=True)


def stage_url(event: Event) -> str:
    return f"{reverse('polls:stage', args=[event.code])}?key={event.stage_key}"


def stage(request: HttpRequest, code: str) -> HttpResponse:
    event = _event_or_404(code)
    key = request.GET.get("key", "")
    if not stage_key_matches(event, key):
        raise Http404
    join_url = request.build_absolute_uri(reverse("polls:phone", args=[event.code]))
    config = {
        "ws_path": f"/ws/e/{event.code}/stage/?key={event.stage_key}",
        "lang": event.language,
        "look": look_digest(event),
        # Where WebSockets are blocked: /api/e/<code>/stage/events and .../stage/answer.
        "fallback": reverse("polls:join", args=[event.code]).removesuffix("join") + "stage/",
        "kinds": kind_modules("stage"),
    }
    with translation.override(event.language):
        return render(
            request,
            "polls/stage.html",
            {
                "event": event,
                "join_url": join_url,
                "join_host": request.get_host(),
                "qr_svg": mark_safe(qr_svg(join_url)),  # noqa: S308 - segno's own SVG markup
                "config": config,
                "kind_styles": kind_styles("stage"),
                "LANGUAGE_CODE": event.language,
            },
        )


def _hidden_words(question: Question | None) -> list[str]:
    if question is None or not kinds.get(question.kind).counts_words:
        return []
    try:
        return tally.hidden_words(question.id)
    except tally.TallyUnavailable:  # the page still works; the list is back with Redis
        return []


def _answer_text(question: Question, value) -> str:
    """A burst's answer as the host reads it: option labels, the words counted (masked)."""
    labels = dict(question.options.values_list("id", "label")) if question.has_options else {}
    return kinds.get(question.kind).brief_answer(value, labels)


def _duration(seconds: int) -> str:
    if seconds < 60:
        return _("%(seconds)d s") % {"seconds": seconds}
    return _("%(minutes)d min %(seconds)d s") % {"minutes": seconds // 60, "seconds": seconds % 60}


def _bursts(event: Event, question: Question | None) -> dict:
    """The remote's "Suspicious bursts": the current question's, then the other set-aside groups
    (a burst set aside on an earlier question stays restorable from here)."""
    if question is None or event.voice != Event.Voice.OPEN:
        return {"shown": False}
    aside = set_aside_of(event.id)
    try:
        bursts = voice.find_bursts(question.id, aside)
    except tally.TallyUnavailable:  # the page still works; the list is back with Redis
        bursts = []
    listed = {burst.group for burst in bursts if burst.aside}
    return {
        "shown": True,
        "bursts": [
            {
                "id": burst.id,
                "group": burst.group,
                "size": burst.size,
                "within": _duration(burst.joined_within),
                "answer": _answer_text(question, burst.value),
                "percent": round(100 * burst.share),
                "aside": burst.aside,
                "all_aside": burst.is_aside,
            }
            for burst in bursts
        ],
        "groups": [
            {"id": group.id, "size": group.size, "within": _duration(group.joined_within)}
            for group in voice.aside_groups(aside)
            if group.id not in listed
        ],
    }


@login_required
def host(request: HttpRequest, code: str) -> HttpResponse:
    event = _event_or_404(code)
    actions.check_host(request.user, event)
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action not in actions.HOST_ACTIONS:
            messages.error(request, _("Unknown action."))
        else:
            try:
                actions.do_host_action(
                    event,
                    action,
                    word=request.POST.get("word", ""),
                    burst=request.POST.get("burst", ""),
                    item=request.POST.get("item", ""),
                    text=request.POST.get("text", ""),
                )
            except ValidationError as error:
                # Saved but not yet on the screens is a warning: pressing again is not needed.
                saved = error.code == "not_live_yet"
                (messages.warning if saved else messages.error)(request, error.messages[0])
        target = reverse("polls:host", args=[event.code])
        if request.POST.get("part") == "qa":  # the remote's script: just the Q&A section back
            return redirect(f"{target}?part=qa&done=1")
        # Without the script a Q&A button reloads the page: it lands back at the Q&A section.
        return redirect(target + ("#hs-qa" if action.startswith("qa_") else ""))
    if request.GET.get("part") == "qa":
        return _host_qa_part(request, event)
    event.refresh_from_db()
    questions = list(event.questions.all())
    current = event.current_question
    position = questions.index(current) + 1 if current in questions else None
    config = {
        "ws_path": f"/ws/e/{event.code}/stage/?key={event.stage_key}",
        "lang": event.language,
        "kinds": kind_modules("remote"),
    }
    with translation.override(event.language):
        return render(
            request,
            "polls/host.html",
            {
                "event": event,
                "current": current,
                "position": position,
                "questions": questions,
                # The profile questions results can be split by, and the one they are now.
                "profiles": [question for question in questions if question.segment],
                "segment_by": event.segment_by_id,
                "stage_url": stage_url(event),
                "phone_url": reverse("polls:phone", args=[event.code]),
                "figures_count": current.figure_links.count() if current else 0,
                "hidden_words": _hidden_words(current),
                "bursts": _bursts(event, current),
                # The Q&A's switches and items for moderation (actions qa_*, with item=<id>).
                "qa": _qa_section(event),
                "admin_url": reverse("admin:polls_event_change", args=[event.id]),
                "config": config,
                "LANGUAGE_CODE": event.language,
            },
        )


def _qa_section(event: Event) -> dict:
    """The remote's Q&A (polls.qa.host_overview) in the groups the host works through: the items
    waiting for them first, then those on the phones, then those done with."""
    overview = qa.host_overview(event)
    items = overview["items"]
    return {
        **overview,
        "shown": overview["on_stage"] and overview["mode"] != "off",
        "waiting": [item for item in items if item["state"] == "pending"],
        # The item on the stage heads the list of those on the phones.
        "visible": sorted(
            (item for item in items if item["state"] == "visible"), key=lambda i: not i["pinned"]
        ),
        "done": [item for item in items if item["state"] in ("answered", "hidden")],
    }


def _host_qa_part(request: HttpRequest, event: Event) -> HttpResponse:
    """The remote's Q&A section alone, for its script to put in place of the one it shows (after
    a press of its own, with the press's messages; or when the stage socket says it moved)."""
    with translation.override(event.language):
        return render(
            request,
            "polls/_host_qa.html",
            {"event": event, "qa": _qa_section(event), "after_press": "done" in request.GET},
        )
