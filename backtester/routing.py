from django.urls import path

from backtester.runs.consumers import BacktestConsumer

websocket_urlpatterns = [
    path("ws/backtests/", BacktestConsumer.as_asgi()),
]
