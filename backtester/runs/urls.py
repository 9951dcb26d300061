from django.urls import path

from backtester.runs import detail_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/compare/", views.run_compare, name="run_compare"),
    path("runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<int:run_id>/delete/", views.run_delete, name="run_delete"),
    path("runs/<int:run_id>/equity.json", detail_views.equity_json, name="run_equity"),
    path("runs/<int:run_id>/price.json", detail_views.price_json, name="run_price"),
    path("runs/<int:run_id>/trades.json", detail_views.trades_json, name="run_trades"),
    path(
        "runs/<int:run_id>/trades.csv",
        detail_views.trades_csv,
        name="run_trades_csv",
    ),
    path(
        "runs/<int:run_id>/export.json", views.run_export_json, name="run_export_json"
    ),
    path("runs/<int:run_id>/export.csv", views.run_export_csv, name="run_export_csv"),
    # Browsers ask for /favicon.ico whatever the page links: send them the icon.
    path("favicon.ico", views.favicon, name="favicon"),
    # Before the stock auth URLs: the page says whether logging in is needed.
    path("accounts/login/", views.login, name="login"),
]
