from django.urls import path

from backtester.portfolio import sweep_views, views

urlpatterns = [
    path("", views.portfolio_page, name="portfolio_page"),
    path("history/", views.portfolio_list, name="portfolio_list"),
    path("<int:portfolio_id>/", views.portfolio_detail, name="portfolio_detail"),
    path("<int:portfolio_id>/trades.json", views.trades_json, name="portfolio_trades"),
    path(
        "<int:portfolio_id>/export.json",
        views.export_json,
        name="portfolio_export_json",
    ),
    path(
        "<int:portfolio_id>/export.csv", views.export_csv, name="portfolio_export_csv"
    ),
    path("sweeps/", sweep_views.psweep_list, name="psweep_list"),
    path("sweeps/<int:sweep_id>/", sweep_views.psweep_detail, name="psweep_detail"),
    path(
        "sweeps/<int:sweep_id>/export.json",
        sweep_views.psweep_export_json,
        name="psweep_export_json",
    ),
    path(
        "sweeps/<int:sweep_id>/export.csv",
        sweep_views.psweep_export_csv,
        name="psweep_export_csv",
    ),
]
