from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "gunship_django.notes"
