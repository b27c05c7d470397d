"""Module-level WSGI callable, for servers configured as `gunship_example.wsgi:app`."""

from gunship_example import create_app

app = create_app()
