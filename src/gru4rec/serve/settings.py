"""Options of the HTTP service (the flags of ``gru4rec serve``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from gru4rec.errors import ConfigError

__all__ = ["SESSION_ID_PATTERN", "ServeSettings"]

SESSION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"


@dataclass(frozen=True)
class ServeSettings:
    """Service options; every limit is enforced with a JSON error (see ``app.py``).

    Attributes:
        host, port, workers: where uvicorn listens and how many processes it runs.
        redis_url: keep sessions in Redis (shared by workers, survives restarts); ``None`` =
            in-process memory store (one worker only, lost on restart).
        session_ttl: seconds a session lives after its last event.
        max_sessions: most sessions kept by the memory store (least recently used go first).
        max_k: largest ``k`` a request may ask for. default_k: ``k`` when omitted.
        max_session_length: longest ``items`` list of ``/v1/recommend``, and the number of
            most recent clicks a live session remembers, for ``exclude_seen`` and to rebuild
            its state under a reloaded model (its state keeps summarising every event).
        max_body_bytes: larger request bodies get 413.
        torch_threads: intra-op threads per worker (1: requests are tiny, processes scale).
        redis_timeout: seconds before a Redis call counts as failed (-> 503).
        admin_token: enables ``POST /v1/admin/reload`` for requests that give it as a bearer
            token (at least 16 characters; ``None``: the route answers 403).
        watch: check the model file every this many seconds and reload it when it changes
            (``None``: only on SIGHUP or the admin route).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    session_ttl: float = 1800.0
    max_sessions: int = 1_000_000
    max_k: int = 100
    default_k: int = 20
    max_session_length: int = 200
    max_body_bytes: int = 65_536
    torch_threads: int = 1
    redis_timeout: float = 1.0
    admin_token: str | None = field(default=None, repr=False)
    watch: float | None = None

    def __post_init__(self) -> None:
        problems = [f"{name} must be >= 1, got {getattr(self, name)}" for name in
                    ("port", "workers", "max_sessions", "max_k", "default_k",
                     "max_session_length", "max_body_bytes", "torch_threads")
                    if getattr(self, name) < 1]
        if not self.session_ttl > 0 or not self.redis_timeout > 0:
            problems.append("session_ttl and redis_timeout must be positive seconds")
        if self.default_k > self.max_k:
            problems.append(f"default_k ({self.default_k}) must be <= max_k ({self.max_k})")
        if self.workers > 1 and not self.redis_url:
            problems.append("--workers > 1 needs --redis-url: the in-process session store "
                            "cannot be shared between worker processes")
        if self.redis_url and not re.match(r"^(redis|rediss|unix)://", self.redis_url):
            problems.append("redis_url must start with redis://, rediss:// or unix://, got "
                            f"{self.redis_url.split(':', 1)[0]!r}:...")
        if self.admin_token is not None and (len(self.admin_token) < 16 or not all(
                c.isprintable() and not c.isspace() for c in self.admin_token)):
            problems.append("the admin token must be at least 16 printable characters without "
                            "spaces (e.g. from: python -c 'import secrets; "
                            "print(secrets.token_urlsafe(32))')")
        if self.watch is not None and not self.watch >= 0.1:
            problems.append(f"watch must be at least 0.1 seconds, got {self.watch}")
        if problems:
            raise ConfigError("; ".join(problems))
