from importlib.metadata import version

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .notes.models import Note


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        "<!doctype html><title>Gunship Django</title>"
        '<link rel="stylesheet" href="/assets/gunship_django/site.css">'
        "<h1>Django behind Gunship</h1>"
    )


def about(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "framework": "django",
            "version": version("gunship-django"),
            "host": request.get_host(),
            "notes": Note.objects.count(),
        }
    )


# An API for scripts (no session, so no CSRF token): POST text and an optional file.
@csrf_exempt
def notes(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        note = Note.objects.create(text=request.POST["text"], attachment=request.FILES.get("attachment"))
        return JsonResponse({"id": note.pk}, status=201)
    return JsonResponse(
        {
            "notes": [
                {
                    "text": note.text,
                    "attachment": note.attachment.name or None,
                    "content": note.attachment.read().decode() if note.attachment else None,
                }
                for note in Note.objects.order_by("pk")
            ]
        }
    )


urlpatterns = [
    path("", index),
    path("about", about),
    path("notes", notes),
    path("admin/", admin.site.urls),
]
