"""Settings from the environment, as twelve-factor apps do: no secret lives in the code.

What outlives a release lives under GUNSHIP_SHARED_DIR (Gunship's shared directories): the
SQLite database in data/, uploads in media/. collectstatic writes to GUNSHIP_STATIC_ROOT, the
release's own static directory, which Nginx serves."""

import os
from pathlib import Path

# A missing secret stops the import: Gunship's gate must catch that before any switch.
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "gunship_django.notes",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "gunship_django.urls"
WSGI_APPLICATION = "gunship_django.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SHARED = Path(os.environ.get("GUNSHIP_SHARED_DIR", Path.cwd() / "var"))
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": SHARED / "data" / "db.sqlite3"}}
MEDIA_ROOT = SHARED / "media"
MEDIA_URL = "/media/"

STATIC_URL = "/assets/"
# Only collectstatic needs it; the running app never serves static files itself.
STATIC_ROOT = os.environ.get("GUNSHIP_STATIC_ROOT")
# The project's own assets (its apps' static/ directories, the admin's among them, are found too).
STATICFILES_DIRS = [Path(__file__).resolve().parent / "static"]
# Uploads are the app's own: readable by its user and group only (Django's default is 0644).
FILE_UPLOAD_PERMISSIONS = 0o640
# A server error's traceback goes to the process manager's log (journal or supervisor's file).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
