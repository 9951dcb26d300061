from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("backtester.runs.urls")),
    path("sweeps/", include("backtester.sweeps.urls")),
    path("portfolio/", include("backtester.portfolio.urls")),
    path("strategies/", include("backtester.library.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
