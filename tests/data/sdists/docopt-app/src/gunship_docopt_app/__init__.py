"""A WSGI app whose one dependency, docopt 0.6.2, is published only as an sdist."""

from docopt import docopt


def application(environ, start_response):
    arguments = docopt("usage: app [--verbose]", argv=[])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(arguments).encode()]
