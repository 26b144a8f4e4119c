"""ServeSettings: every bad value is a ConfigError naming the setting."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from gru4rec.errors import ConfigError  # noqa: E402
from gru4rec.serve.settings import ServeSettings  # noqa: E402


@pytest.mark.parametrize(("kwargs", "text"), [
    ({"workers": 2}, "--workers > 1 needs --redis-url"),
    ({"max_k": 0}, "max_k must be >= 1"),
    ({"default_k": 50, "max_k": 10}, "default_k (50) must be <= max_k"),
    ({"redis_url": "http://x"}, "must start with redis://"),
    ({"session_ttl": 0}, "positive seconds"),
])
def test_bad_settings(kwargs: dict, text: str) -> None:
    with pytest.raises(ConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
        ServeSettings(**kwargs)
