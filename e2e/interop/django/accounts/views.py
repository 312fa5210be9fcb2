"""The two endpoints Confab needs from the site.

`POST /api/token` logs a user in with Django's own authentication and answers the JWT that
Confab trusts, signed exactly as a Channels-era app signs it:
`jwt.encode({"uid": …, "nickname": …, "group_name": …}, settings.TOKEN_KEY)`. The user's
first Django group (by name) is the Confab room the socket is joined to at connect.

`POST /api/announce` lets a staff user push a notice into their group's room through
Confab's publish API (accounts/confab.py), where a Channels app would call `group_send`.
It authenticates with the same token, which the site verifies itself.
"""

import json
import time

import jwt
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import confab


def _json_body(request):
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _group(user):
    group = user.groups.order_by("name").first()
    return group.name if group else None


# Both views take JSON from programs and authenticate every request by its body or its
# bearer token, never by a cookie, so there is no cross-site request to forge.
@csrf_exempt
@require_POST
def token(request):
    """`{"username", "password"}` → `{"token"}`; 401 for a wrong username or password."""
    body = _json_body(request)
    if body is None:
        return JsonResponse({"error": "the body must be a JSON object"}, status=400)
    user = authenticate(request, username=body.get("username"), password=body.get("password"))
    if user is None:
        return JsonResponse({"error": "invalid username or password"}, status=401)
    claims = {"uid": user.id, "nickname": user.username, "group_name": _group(user)}
    if settings.TOKEN_LIFETIME:
        claims["exp"] = int(time.time()) + settings.TOKEN_LIFETIME
    return JsonResponse({"token": jwt.encode(claims, settings.TOKEN_KEY)})


@csrf_exempt
@require_POST
def announce(request):
    """`{"text"}` from a staff user → a notice in their group's Confab room; answers 202
    with the group and how many sockets received it."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return JsonResponse({"error": "a bearer token is required"}, status=401)
    try:
        claims = jwt.decode(header.removeprefix("Bearer "), settings.TOKEN_KEY, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        return JsonResponse({"error": "invalid token"}, status=401)
    user = get_user_model().objects.filter(pk=claims.get("uid"), is_active=True).first()
    if user is None:
        return JsonResponse({"error": "invalid token"}, status=401)
    if not user.is_staff:
        return JsonResponse({"error": "only staff may announce"}, status=403)
    body = _json_body(request)
    text = body.get("text") if body else None
    if not isinstance(text, str) or not text.strip():
        return JsonResponse({"error": "`text` must be a non-empty string"}, status=400)
    group = _group(user)
    if group is None:
        return JsonResponse({"error": "the user is in no group"}, status=409)
    payload = {"type": "announcement", "group": group, "text": text, "by": user.username}
    try:
        delivered = confab.group_send(group, payload)
    except confab.PublishError as err:
        return JsonResponse({"error": f"Confab refused the publish: {err.detail}"}, status=502)
    except OSError as err:
        return JsonResponse({"error": f"Confab is unreachable: {err}"}, status=502)
    return JsonResponse({"group": group, "delivered_locally": delivered}, status=202)
