"""Host-only downloads and the printable results page; included from config/urls.py."""

from django.urls import path

from . import export_views

app_name = "exports"

urlpatterns = [
    path("e/<code:code>/export/answers.csv", export_views.answers_csv, name="answers_csv"),
    path("e/<code:code>/export/results.csv", export_views.results_csv, name="results_csv"),
    path("e/<code:code>/export/qa.csv", export_views.qa_csv, name="qa_csv"),
    path(
        "e/<code:code>/export/leaderboard.csv",
        export_views.leaderboard_csv,
        name="leaderboard_csv",
    ),
    path("e/<code:code>/export/results.xlsx", export_views.results_xlsx, name="results_xlsx"),
    path("e/<code:code>/results/", export_views.results_print, name="results_print"),
]
