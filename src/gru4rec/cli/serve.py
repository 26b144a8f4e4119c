"""``gru4rec serve``: the HTTP service (FastAPI + uvicorn; ``pip install "gru4rec[serve]"``)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from gru4rec.cli.arguments import Subparsers, add_model_argument

__all__ = ["add_parser", "execute"]

ENV_SETTINGS = "GRU4REC_SERVE_SETTINGS"  # how worker processes receive the options
ENV_TOKEN = "GRU4REC_ADMIN_TOKEN"  # the admin token, when no --admin-token-file is given
_EXAMPLES = """\
examples:
  gru4rec serve model.pt --port 8000
  gru4rec serve model.pt --workers 4 --redis-url redis://localhost:6379/0
  curl -s -X POST localhost:8000/v1/sessions/abc/events -H 'content-type: application/json' \\
       -d '{"item_id": 214536502, "k": 5}'

model reload (no downtime, live sessions kept):
  kill -HUP <pid>                                  # serve the model file as it is now
  GRU4REC_ADMIN_TOKEN=$(cat token) gru4rec serve model.pt
  curl -s -X POST localhost:8000/v1/admin/reload -H "Authorization: Bearer $(cat token)"
  gru4rec serve model.pt --watch                   # reload when model.pt changes
"""


def add_parser(subparsers: Subparsers) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand to ``subparsers`` and return its parser."""
    p = subparsers.add_parser(
        "serve", help="serve recommendations over HTTP (needs the serve extra)",
        description="Serve a saved model over HTTP: live sessions advance one GRU step per "
                    "event. OpenAPI docs at /docs.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_argument(p)
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on. (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="Port. (8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="Worker processes; more than 1 needs --redis-url. (1)")
    p.add_argument("--redis-url", metavar="URL",
                   help="Keep sessions in Redis (shared by workers, survives restarts), e.g. "
                        "redis://localhost:6379/0. Default: in-process memory.")
    p.add_argument("--redis-timeout", type=float, default=1.0, metavar="SECONDS",
                   help="A Redis call that takes longer fails its request with 503 "
                        "store_unavailable ('Timeout reading from ...'). (1)")
    p.add_argument("--session-ttl", type=float, default=1800.0,
                   help="Seconds a session lives after its last event. (1800)")
    p.add_argument("--max-sessions", type=int, default=1_000_000,
                   help="Sessions the memory store keeps (least recently used go). (1000000)")
    p.add_argument("--max-k", type=int, default=100, help="Largest k a request may ask. (100)")
    p.add_argument("--max-session-length", type=int, default=200,
                   help="Longest /v1/recommend session, and the recent clicks a live "
                        "session remembers (for exclude_seen, and to rebuild it under a "
                        "reloaded model). (200)")
    p.add_argument("--max-body-bytes", type=int, default=65_536,
                   help="Larger request bodies get 413. (65536)")
    p.add_argument("--admin-token-file", metavar="FILE",
                   help="Enable POST /v1/admin/reload for requests with 'Authorization: Bearer "
                        f"<token>', the token being this file's first line (or set {ENV_TOKEN}"
                        "). At least 16 characters. Default: the route answers 403.")
    p.add_argument("--watch", nargs="?", type=float, const=2.0, default=None, metavar="SECONDS",
                   help="Reload the model when its file changes, checking every SECONDS (2 "
                        "when omitted). Write new models to a temporary file and rename it "
                        "over MODEL ('gru4rec run -s' does). Default: reload only on SIGHUP "
                        "or the admin route.")
    p.add_argument("--access-log", action="store_true", help="Log every request (slower).")
    return p


def _admin_token(path: str | None) -> str | None:
    """The admin token from ``--admin-token-file`` or the environment (``None``: off)."""
    if path is None:
        return os.environ.get(ENV_TOKEN) or None
    from gru4rec.errors import ConfigError

    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin token from {path}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None


def _require_extra(redis: bool) -> None:
    from importlib.util import find_spec

    from gru4rec.errors import ConfigError

    needed = ["fastapi", "uvicorn", "orjson"] + (["redis"] if redis else [])
    missing = [m for m in needed if find_spec(m) is None]
    if missing:
        raise ConfigError(f"'gru4rec serve' needs {', '.join(missing)}; install the serve "
                          'extra: pip install "gru4rec[serve]"')


def execute(args: argparse.Namespace) -> int:
    """Run ``gru4rec serve`` until interrupted; returns the exit code."""
    from gru4rec.serve.settings import ServeSettings

    settings = ServeSettings(
        host=args.host, port=args.port, workers=args.workers, redis_url=args.redis_url,
        session_ttl=args.session_ttl, max_sessions=args.max_sessions, max_k=args.max_k,
        max_session_length=args.max_session_length, max_body_bytes=args.max_body_bytes,
        redis_timeout=args.redis_timeout, admin_token=_admin_token(args.admin_token_file),
        watch=args.watch)
    _require_extra(settings.redis_url is not None)
    from gru4rec.model_file import read_model_file

    read_model_file(args.model)  # a bad model file stops here, with its message
    import uvicorn

    common = {"host": settings.host, "port": settings.port, "access_log": args.access_log,
              "log_level": "info" if args.verbose else "warning"}
    reload_by = ["SIGHUP"] + (["POST /v1/admin/reload"] if settings.admin_token else []) + (
        [f"file changes (every {settings.watch:g} s)"] if settings.watch else [])
    print(f"serving {args.model} on http://{settings.host}:{settings.port} (docs at /docs; "
          f"{settings.workers} worker(s), {'redis' if settings.redis_url else 'memory'} "
          f"session store; reload on {', '.join(reload_by)})", flush=True)
    if settings.workers == 1:
        from gru4rec.serve.app import create_app

        uvicorn.run(create_app(args.model, settings), **common)
        return 0
    os.environ[ENV_SETTINGS] = json.dumps({"model": os.path.abspath(args.model),
                                           "settings": settings.__dict__})
    config = uvicorn.Config("gru4rec.serve.app:app_from_env", factory=True,
                            workers=settings.workers, **common)
    _supervisor(config).run()
    return 0


def _supervisor(config: Any) -> Any:
    """uvicorn's worker supervisor, except that SIGHUP is passed on to every worker, which
    then reloads the model in place: no worker is replaced, so no connection is closed (a
    replaced worker closes its idle keep-alive connections, and a request already on its way
    over one of them fails)."""
    import signal

    from uvicorn.supervisors import Multiprocess

    class ForwardHup(Multiprocess):
        def handle_hup(self) -> None:
            for process in self.processes:
                if process.pid is not None:
                    os.kill(process.pid, signal.SIGHUP)

    return ForwardHup(config, sockets=[config.bind_socket()])
