from django.urls import path

from backtester.sweeps import views, wf_views

urlpatterns = [
    path("", views.sweep_page, name="sweep_page"),
    path("history/", views.sweep_list, name="sweep_list"),
    path("<int:sweep_id>/", views.sweep_detail, name="sweep_detail"),
    path("<int:sweep_id>/cells/<int:index>/", views.cell_detail, name="sweep_cell"),
    path(
        "<int:sweep_id>/cells/<int:index>/run/",
        views.cell_run,
        name="sweep_cell_run",
    ),
    path("<int:sweep_id>/export.json", views.export_json, name="sweep_export_json"),
    path("<int:sweep_id>/export.csv", views.export_csv, name="sweep_export_csv"),
    path("walk-forward/", wf_views.walk_forward_list, name="walk_forward_list"),
    path(
        "walk-forward/<int:walk_forward_id>/",
        wf_views.walk_forward_detail,
        name="walk_forward_detail",
    ),
    path(
        "walk-forward/<int:walk_forward_id>/export.json",
        wf_views.walk_forward_export,
        name="walk_forward_export",
    ),
]
