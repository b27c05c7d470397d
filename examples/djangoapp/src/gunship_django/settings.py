"""Settings from the environment, as twelve-factor apps do: no secret lives in the code."""

import os
from pathlib import Path

# A missing secret stops the import: Gunship's gate must catch that before any switch.
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost").split(",")

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "gunship_django.urls"
WSGI_APPLICATION = "gunship_django.wsgi.application"
DATABASES: dict = {}
USE_TZ = True

STATIC_URL = "/assets/"
STATIC_ROOT = Path(__file__).resolve().parent / "static"
