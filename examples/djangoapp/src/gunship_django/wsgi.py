"""WSGI entry point; DJANGO_SETTINGS_MODULE comes from the environment Gunship writes."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
