"""A minimal Django project, deployed by Gunship like any other WSGI app."""
