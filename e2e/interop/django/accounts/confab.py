"""Pushing into a Confab room from Django: what `channel_layer.group_send` does in a
Channels project.

    group_send("team-red", {"type": "announcement", "text": "deploy at 17:00"})

Every socket joined to the room receives `{"method": "notice", "params": {"payload": …}}`,
on every Confab instance. The call is `POST /api/publish` with an API token of a Confab
admin that has the `publish` scope (`confab token create <admin> --name django --scope
publish`).
"""

import json
import urllib.error
import urllib.request

from django.conf import settings


class PublishError(Exception):
    """Confab refused the publish; `status` and `detail` come from its problem+json."""

    def __init__(self, status, detail):
        super().__init__(f"Confab answered {status}: {detail}")
        self.status = status
        self.detail = detail


def group_send(group, payload, timeout=5):
    """Delivers `payload` (any JSON, at most 16 KiB) to the sockets in room `group`; returns
    how many connections of the instance that took the request received it."""
    request = urllib.request.Request(
        f"{settings.CONFAB_URL}/api/publish",
        method="POST",
        data=json.dumps({"target": {"room": group}, "payload": payload}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {settings.CONFAB_API_TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)["delivered_locally"]
    except urllib.error.HTTPError as err:
        try:
            detail = json.load(err).get("detail", "")
        except ValueError:
            detail = ""
        raise PublishError(err.code, detail) from None
