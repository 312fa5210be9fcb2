"""A minimal Django project: nothing but Channels and a Redis channel layer."""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["daphne", "channels"]
ASGI_APPLICATION = "benchsite.asgi.application"
USE_TZ = True

# The stock channels_redis layer with its default capacity and expiry: what a deployment
# following the Channels tutorial runs.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")]},
    }
}
