from django.urls import path

from backtester.library import views

urlpatterns = [
    path("", views.strategy_list, name="strategy_list"),
    path("new", views.strategy_new, name="strategy_new"),
    path("check.json", views.check_json, name="strategy_check"),
    path("preview.json", views.preview_json, name="strategy_preview"),
    path("save.json", views.save_json, name="strategy_save"),
    path("<slug:key>/edit", views.strategy_edit, name="strategy_edit"),
    path("<slug:key>/delete", views.delete, name="strategy_delete"),
]
