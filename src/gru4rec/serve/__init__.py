"""The HTTP service: ``gru4rec serve`` (FastAPI + uvicorn, the ``serve`` extra).

``app.py`` (app factory, routes, error handling), ``schemas.py`` (request and response
models), ``settings.py`` (limits and options), ``store.py`` (Redis session store and the
choice of store). Nothing here is imported by ``import gru4rec``.
"""

__all__: list[str] = []
