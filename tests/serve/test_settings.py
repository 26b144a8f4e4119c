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
    ({"admin_token": "short"}, "at least 16 printable characters"),
    ({"admin_token": "has a space in the middle"}, "without spaces"),
    ({"watch": 0.01}, "watch must be at least 0.1 seconds"),
])
def test_bad_settings(kwargs: dict, text: str) -> None:
    with pytest.raises(ConfigError, match=text.replace("(", r"\(").replace(")", r"\)")):
        ServeSettings(**kwargs)


def test_the_admin_token_is_not_shown() -> None:
    settings = ServeSettings(admin_token="s3cret-token-0123456789")
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings)
