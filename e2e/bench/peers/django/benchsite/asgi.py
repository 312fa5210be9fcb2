"""ASGI entry point: WebSocket chat at /ws/chat/, nothing over plain HTTP."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")

import django  # noqa: E402

django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from benchsite.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter([path("ws/chat/", ChatConsumer.as_asgi())]),
    }
)
