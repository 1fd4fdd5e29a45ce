"""The quiz in admin: quiz mode, scored questions and what makes one unscorable, the players."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest
from django.urls import reverse

from benchmarks.models import Figure, Study
from polls import quiz_board
from polls.models import Event, Option, Player, Question
from polls.quiz import nickname_key
from tests.factories import (
    admin_data,
    grant_polls_permissions,
    make_event,
    make_question,
    make_user,
)
from tests.test_admin import question_form

pytestmark = pytest.mark.django_db

ADD = "admin:polls_question_add"


@pytest.fixture
def host():
    user = make_user("host-a")
    grant_polls_permissions(user)
    return user


@pytest.fixture
def event(host):
    return make_event(code="TEST42", hosts=[host], quiz=True)


def page_of(response) -> str:
    return html.unescape(response.content.decode())


def make_figure(metric="split", value="39", year=2018, segment="", **fields) -> Figure:
    study, _created = Study.objects.get_or_create(title="Benchmark", publisher="KIRC", year=2018)
    return Figure.objects.create(
        study=study,
        label=f"{metric} {year} {segment}",
        metric=metric,
        year=year,
        value=None if value is None else Decimal(value),
        segment=segment,
        **fields,
    )


def figures(*linked) -> dict:
    data = {"figure_links-TOTAL_FORMS": len(linked)}
    for index, figure in enumerate(linked):
        data[f"figure_links-{index}-figure"] = figure.id
        data[f"figure_links-{index}-order"] = index
    return data


def split_form(event, **overrides):
    fields = {
        "kind": "split",
        "prompt": "Self-service or live?",
        "split_a_label": "self-service",
        "split_b_label": "live",
        "options-TOTAL_FORMS": 0,
        "scored": "on",
        "tolerance": "20",
        "time_limit": "20",
    }
    return question_form(event, **{**fields, **overrides})


def ces_form(event, **overrides):
    fields = {
        "kind": "ces",
        "prompt": "How much effort?",
        "scale_min": 1,
        "scale_max": 5,
        "lower_is_better": "on",
        "options-TOTAL_FORMS": 0,
        "scored": "on",
        "tolerance": "1.5",
    }
    return question_form(event, **{**fields, **overrides})


def refused(client, data, *messages):
    response = client.post(reverse(ADD), data)
    assert response.status_code == 200, "saved although it should be refused"
    page = page_of(response)
    for message in messages:
        assert message in page
    assert not Question.objects.filter(prompt=data["prompt"]).exists()
    return page


def saved(client, data) -> Question:
    response = client.post(reverse(ADD), data)
    assert response.status_code == 302, page_of(response)[:4000]
    return Question.objects.get(prompt=data["prompt"])


# --- the event --------------------------------------------------------------------------------


def test_the_event_form_switches_quiz_mode(client, host):
    plain = make_event(code="PQR42", hosts=[host])
    client.force_login(host)
    url = reverse("admin:polls_event_change", args=[plain.id])
    assert 'name="quiz"' in client.get(url).content.decode()
    response = client.post(url, admin_data(plain, quiz="on"))
    assert response.status_code == 302, page_of(response)[:3000]
    assert Event.objects.get(pk=plain.pk).quiz
    client.post(url, admin_data(plain))  # the box left unticked
    assert not Event.objects.get(pk=plain.pk).quiz


# --- the question form ------------------------------------------------------------------------


def test_the_question_form_has_a_quiz_fieldset_and_correct_options(client, host, event):
    client.force_login(host)
    page = client.get(reverse(ADD)).content.decode()
    for name in ("scored", "target", "tolerance", "time_limit", "options-__prefix__-correct"):
        assert f'name="{name}"' in page
    assert ">Quiz<" in page


def test_a_scored_single_choice_needs_a_correct_option(client, host, event):
    client.force_login(host)
    refused(
        client,
        question_form(event, scored="on"),
        "A scored single-choice question needs at least one option marked correct.",
    )
    question = saved(client, question_form(event, scored="on", **{"options-1-correct": "on"}))
    assert question.scored
    assert [o.correct for o in question.options.all()] == [False, True]


def test_a_scored_single_choice_may_have_several_correct_options(client, host, event):
    client.force_login(host)
    data = question_form(
        event, scored="on", **{"options-0-correct": "on", "options-1-correct": "on"}
    )
    assert saved(client, data).options.filter(correct=True).count() == 2


def test_a_scored_multiple_choice_needs_a_correct_option(client, host, event):
    client.force_login(host)
    refused(
        client,
        question_form(event, kind="multiple", scored="on"),
        "A scored multiple-choice question needs at least one option marked correct",
    )
    data = question_form(event, kind="multiple", scored="on", **{"options-0-correct": "on"})
    assert saved(client, data).kind == "multiple"


def test_a_scored_multiple_choice_whose_correct_options_no_answer_can_choose(client, host, event):
    client.force_login(host)
    data = question_form(
        event,
        kind="multiple",
        scored="on",
        min_choices=1,
        max_choices=1,
        **{"options-0-correct": "on", "options-1-correct": "on"},
    )
    refused(client, data, "2 options are marked correct, but an answer chooses 1 to 1 options")


def test_a_kind_that_cannot_score_is_refused_naming_the_kinds(client, host, event):
    client.force_login(host)
    page = refused(
        client,
        question_form(event, kind="ranking", scored="on", **{"options-0-correct": "on"}),
        "A Ranking question cannot be scored. Scored questions are of these kinds:",
    )
    for label in ("Single choice", "Multiple choice", "Scale / report mark", "Split"):
        assert label in page
    refused(
        client,
        question_form(event, kind="text", scored="on", **{"options-TOTAL_FORMS": 0}),
        "cannot be scored",
    )


def test_a_profile_question_cannot_be_scored(client, host, event):
    client.force_login(host)
    refused(
        client,
        question_form(event, segment="on", scored="on", **{"options-0-correct": "on"}),
        "A profile question cannot be scored",
    )


def test_only_a_quiz_event_scores_its_questions(client, host):
    plain = make_event(code="PQR42", hosts=[host])
    client.force_login(host)
    refused(
        client,
        question_form(plain, scored="on", **{"options-0-correct": "on"}),
        "Only a quiz event scores its questions",
    )
    assert saved(client, question_form(plain, **{"options-0-correct": "on"})).scored is False


def test_quiz_mode_stays_on_while_a_question_is_scored(client, host, event):
    question = make_question(event, prompt="Right one?", scored=True)
    Option.objects.filter(question=question, label="Red").update(correct=True)
    client.force_login(host)
    row = {
        "questions-TOTAL_FORMS": 1,
        "questions-INITIAL_FORMS": 1,
        "questions-0-id": question.id,
        "questions-0-event": event.id,
        "questions-0-order": 1,
        "questions-0-prompt": question.prompt,
        "questions-0-kind": "single",
    }
    url = reverse("admin:polls_event_change", args=[event.id])
    response = client.post(url, admin_data(event, **row))  # quiz mode unticked
    assert response.status_code == 200
    assert "Only a quiz event scores its questions" in page_of(response)
    assert Event.objects.get(pk=event.pk).quiz
    question.scored = False
    question.save()
    assert client.post(url, admin_data(event, **row)).status_code == 302
    assert not Event.objects.get(pk=event.pk).quiz


def test_correct_options_on_an_unscored_question_are_kept_and_the_host_told(client, host, event):
    client.force_login(host)
    response = client.post(
        reverse(ADD), question_form(event, **{"options-0-correct": "on"}), follow=True
    )
    assert "marked correct, but it is not scored" in page_of(response)
    question = Question.objects.get(prompt="Which?")
    assert not question.scored and question.options.filter(correct=True).count() == 1


# --- estimates: target and tolerance ----------------------------------------------------------


def test_a_scored_split_needs_a_target_or_a_figure(client, host, event):
    client.force_login(host)
    refused(client, split_form(event), "A scored Split / percentage guess question needs a target")
    assert saved(client, split_form(event, target="39")).target == 39


def test_a_scored_split_takes_its_target_from_the_linked_figure(client, host, event):
    client.force_login(host)
    question = saved(client, split_form(event, **figures(make_figure(value="39"))))
    assert question.target is None
    from polls.state import figure_target

    assert figure_target(question) == 39


def test_a_figure_for_a_segment_or_without_value_gives_no_target(client, host, event):
    make_question(event, prompt="Generation?", options=("Gen Z", "Other"), segment=True)
    client.force_login(host)
    for figure in (make_figure(segment="Gen Z", value="70"), make_figure(value=None, year=2017)):
        refused(client, split_form(event, **figures(figure)), "needs a target")


def test_removing_the_figure_a_target_came_from_is_refused(client, host, event):
    client.force_login(host)
    question = saved(client, split_form(event, **figures(make_figure())))
    link = question.figure_links.get()
    data = split_form(
        event,
        **{
            **figures(link.figure),
            "figure_links-INITIAL_FORMS": 1,
            "figure_links-0-id": link.id,
            "figure_links-0-question": question.id,
            "figure_links-0-DELETE": "on",
        },
    )
    response = client.post(reverse("admin:polls_question_change", args=[question.id]), data)
    assert response.status_code == 200
    assert "needs a target" in page_of(response)
    assert question.figure_links.count() == 1


@pytest.mark.parametrize("tolerance", ["", "0", "-5"])
def test_a_scored_estimate_needs_a_tolerance_above_zero(client, host, event, tolerance):
    client.force_login(host)
    refused(
        client,
        split_form(event, target="39", tolerance=tolerance),
        "A scored estimate needs a tolerance above 0",
    )


@pytest.mark.parametrize(
    ("form", "target", "message"),
    [
        (split_form, "101", "within the answers this question takes: 0 to 100"),
        (split_form, "-1", "0 to 100"),
        (ces_form, "6", "within the answers this question takes: 1 to 5"),
        (ces_form, "0.5", "1 to 5"),
    ],
)
def test_a_target_outside_the_answers_range_is_refused(client, host, event, form, target, message):
    client.force_login(host)
    refused(client, form(event, target=target), message)


def test_a_scale_target_lies_within_its_own_scale(client, host, event):
    client.force_login(host)
    data = question_form(
        event,
        kind="scale",
        prompt="Which mark?",
        scale_min=1,
        scale_max=10,
        scored="on",
        tolerance="2",
        target="11",
        **{"options-TOTAL_FORMS": 0},
    )
    refused(client, data, "1 to 10")
    data["target"] = "7.5"
    assert saved(client, data).target == Decimal("7.5")


def test_a_scored_ces_takes_its_target_from_its_ces_figure(client, host, event):
    figure = make_figure("ces", "1.6", 2017, scale_min=1, scale_max=5, lower_is_better=True)
    client.force_login(host)
    question = saved(client, ces_form(event, **figures(figure)))
    from polls.state import figure_target

    assert figure_target(question) == Decimal("1.6")


def test_a_latest_figure_outside_the_range_is_refused(client, host, event):
    # A figure whose value no answer can reach (a mean of another scale would be refused as
    # unfit; a percentage can only be out of range on a scale question, which cannot link it).
    client.force_login(host)
    data = question_form(
        event,
        kind="scale",
        prompt="Which mark?",
        scale_min=1,
        scale_max=5,
        scored="on",
        tolerance="1",
        **{"options-TOTAL_FORMS": 0},
        **figures(make_figure("mean", "7.5", scale_min=1, scale_max=5)),
    )
    refused(client, data, "The research figure's value 7.5 lies outside the answers")


def test_an_unscored_estimate_needs_neither_target_nor_tolerance(client, host, event):
    client.force_login(host)
    question = saved(client, split_form(event, scored="", tolerance="", time_limit=""))
    assert not question.scored


def test_a_time_limit_on_an_unscored_question_is_kept_and_the_host_told(client, host, event):
    client.force_login(host)
    response = client.post(reverse(ADD), question_form(event, time_limit="30"), follow=True)
    assert "The time limit counts only for a scored question" in page_of(response)
    assert Question.objects.get(prompt="Which?").time_limit == 30


def test_changing_a_scored_question_s_kind_on_the_event_page_is_checked(client, host, event):
    question = make_question(event, prompt="Right one?", scored=True)
    Option.objects.filter(question=question, label="Red").update(correct=True)
    client.force_login(host)
    data = admin_data(
        event,
        quiz="on",
        **{
            "questions-TOTAL_FORMS": 1,
            "questions-INITIAL_FORMS": 1,
            "questions-0-id": question.id,
            "questions-0-event": event.id,
            "questions-0-order": 1,
            "questions-0-prompt": question.prompt,
            "questions-0-kind": "ranking",
        },
    )
    url = reverse("admin:polls_event_change", args=[event.id])
    response = client.post(url, data)
    assert response.status_code == 200
    assert "A Ranking question cannot be scored" in page_of(response)
    assert Question.objects.get(pk=question.pk).kind == "single"
    data["questions-0-kind"] = "multiple"  # one correct option of three: answerable
    assert client.post(url, data).status_code == 302
    assert Question.objects.get(pk=question.pk).kind == "multiple"


# --- players ----------------------------------------------------------------------------------


def make_player(event, number, nickname="") -> Player:
    return Player.objects.create(
        event=event,
        participant=f"p-{event.code}-{number}",
        number=number,
        nickname=nickname,
        key=nickname_key(nickname) if nickname else "",
    )


@pytest.fixture
def other_host():
    user = make_user("host-b")
    grant_polls_permissions(user)
    return user


def test_a_host_lists_and_searches_only_their_events_players(client, host, event, other_host):
    other = make_event(code="EVENTB", hosts=[other_host], quiz=True)
    make_player(event, 1, "Anne")
    make_player(event, 2)
    make_player(other, 1, "Bram")
    client.force_login(host)
    changelist = reverse("admin:polls_player_changelist")
    page = page_of(client.get(changelist))
    assert "Anne" in page and "Player 2" in page
    assert "Bram" not in page and "EVENTB" not in page
    found = page_of(client.get(changelist, {"q": "ann"}))
    assert "Anne" in found and "Player 2" not in found


def test_a_host_renames_a_player_masked_and_keyed(client, host, event):
    player = make_player(event, 1, "Anne")
    client.force_login(host)
    url = reverse("admin:polls_player_change", args=[player.id])
    page = page_of(client.get(url))
    assert 'name="nickname"' in page
    assert 'name="number"' not in page and 'name="participant"' not in page  # read-only
    response = client.post(url, {"nickname": "  Quiz   Queen "})
    assert response.status_code == 302, page_of(response)[:3000]
    player.refresh_from_db()
    assert player.nickname == "Quiz Queen" and player.key == "quizqueen"
    client.post(url, {"nickname": ""})  # back to "Player 1"
    player.refresh_from_db()
    assert player.nickname == "" and player.key == "" and player.shown_name == "Player 1"


@pytest.mark.parametrize("taken", ["Anne-Marie", "anne marie", "ANNÉ MARIE"])
def test_a_rename_to_a_taken_nickname_is_refused(client, host, event, taken):
    make_player(event, 1, "Anne-Marie")
    player = make_player(event, 2, "Bram")
    client.force_login(host)
    response = client.post(
        reverse("admin:polls_player_change", args=[player.id]), {"nickname": taken}
    )
    assert response.status_code == 200
    assert "Another player of this event has this nickname" in page_of(response)
    player.refresh_from_db()
    assert player.nickname == "Bram"


def test_the_same_nickname_in_another_event_is_free(client, host, event):
    make_player(make_event(code="EVENTB", hosts=[host], quiz=True), 1, "Anne")
    player = make_player(event, 1)
    client.force_login(host)
    client.post(reverse("admin:polls_player_change", args=[player.id]), {"nickname": "Anne"})
    player.refresh_from_db()
    assert player.nickname == "Anne"


def test_a_nickname_without_letters_or_too_long_is_refused(client, host, event):
    player = make_player(event, 1, "Anne")
    client.force_login(host)
    url = reverse("admin:polls_player_change", args=[player.id])
    assert "at least one letter or digit" in page_of(client.post(url, {"nickname": "!!!"}))
    long_name = "x" * 25
    assert "at most 24 characters" in page_of(client.post(url, {"nickname": long_name}))
    player.refresh_from_db()
    assert player.nickname == "Anne"


def test_a_host_cannot_see_or_rename_another_hosts_player(client, host, other_host):
    other = make_event(code="EVENTB", hosts=[other_host], quiz=True)
    player = make_player(other, 1, "Bram")
    client.force_login(host)
    url = reverse("admin:polls_player_change", args=[player.id])
    assert client.get(url).status_code == 302  # "doesn't exist", back to the admin's index
    client.post(url, {"nickname": "Hacked"})
    changelist = reverse("admin:polls_player_changelist")
    client.post(changelist, {"action": "remove_players", "_selected_action": [player.id]})
    player.refresh_from_db()
    assert player.nickname == "Bram" and not player.removed


def test_remove_and_restore_on_the_leaderboard(client, host, event):
    anne = make_player(event, 1, "Anne")
    bram = make_player(event, 2, "Bram")
    client.force_login(host)
    changelist = reverse("admin:polls_player_changelist")
    response = client.post(
        changelist, {"action": "remove_players", "_selected_action": [anne.id]}, follow=True
    )
    assert "1 player removed from the leaderboard" in page_of(response)
    anne.refresh_from_db()
    assert anne.removed and anne.nickname == "" and anne.key == ""  # the name went with it
    # What the stage's next leaderboard reads: Anne is left out, Bram named.
    removed, names = quiz_board._players.func(event.id, [anne.participant, bram.participant])
    assert removed == {anne.participant}
    assert names[bram.participant] == "Bram"
    board = quiz_board.build(
        event.id,
        None,
        True,
        [(anne.participant, 2 * 10**10), (bram.participant, 10**10)],
        {},
        {},
        removed,
        names,
    )
    assert '"name":"Bram"' in board.leaderboard.replace(" ", "")
    assert "Player 1" not in board.leaderboard
    client.post(changelist, {"action": "restore_players", "_selected_action": [anne.id]})
    anne.refresh_from_db()
    assert not anne.removed and anne.shown_name == "Player 1"


def test_a_rename_shows_on_the_next_leaderboard(client, host, event):
    player = make_player(event, 1, "Anne")
    client.force_login(host)
    client.post(reverse("admin:polls_player_change", args=[player.id]), {"nickname": "Annie"})
    _removed, names = quiz_board._players.func(event.id, [player.participant])
    assert names == {player.participant: "Annie"}


def test_players_are_neither_added_nor_deleted_in_admin(client, host, event):
    player = make_player(event, 1)
    client.force_login(host)
    assert client.get(reverse("admin:polls_player_add")).status_code == 403
    assert client.get(reverse("admin:polls_player_delete", args=[player.id])).status_code == 403
