from importlib.metadata import version

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


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
        }
    )


urlpatterns = [path("", index), path("about", about)]
