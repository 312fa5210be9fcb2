"""A minimal Django site whose users chat through Confab.

Everything that differs between deployments comes from the environment:

- CHAT_TOKEN_KEY (required): the HS256 key the site signs its tokens with, shared with
  Confab's issuers file (`secret` or `secret_file`); at least 32 bytes.
- CHAT_TOKEN_LIFETIME: seconds until a token expires (its `exp`); 0, the default, signs
  tokens without `exp`, which Confab accepts only from an issuer with `require_exp = false`.
- CONFAB_URL and CONFAB_API_TOKEN: where `POST /api/publish` is and the API token (scope
  `publish`, of a Confab admin) it is called with.
- CHAT_DB: the SQLite file (default db.sqlite3 beside manage.py).
- DJANGO_SECRET_KEY, DJANGO_DEBUG.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only-set-DJANGO_SECRET_KEY")
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "accounts",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "chatsite.urls"
WSGI_APPLICATION = "chatsite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CHAT_DB", BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"

TOKEN_KEY = os.environ["CHAT_TOKEN_KEY"]
TOKEN_LIFETIME = int(os.environ.get("CHAT_TOKEN_LIFETIME", "0"))
CONFAB_URL = os.environ.get("CONFAB_URL", "http://127.0.0.1:8000").rstrip("/")
CONFAB_API_TOKEN = os.environ.get("CONFAB_API_TOKEN", "")
