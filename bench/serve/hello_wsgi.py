"""The ceiling of `npm run bench -- serve`: a hello-world WSGI app in place of Django's, under
the same uWSGI, nginx and front as the site."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "6")])
    return [b"hello\n"]
