from django.urls import path

from backtester.consumers import BacktestConsumer

websocket_urlpatterns = [
    path("ws/backtests/", BacktestConsumer.as_asgi()),
]
