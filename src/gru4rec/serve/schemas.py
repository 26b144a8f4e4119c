"""Request and response bodies of the HTTP service (pydantic models; they make the
OpenAPI docs at ``/docs``).

Item ids are JSON ints or strings, converted to the model's id type by
:func:`gru4rec.inference.coerce_ids`: for a model trained on integer ids, ``"42"`` is item
42 (and ``"042"`` or ``"abc"`` are unknown); for a model trained on string ids, ``42`` is
item ``"42"``. Responses give ids in the model's type. Fractional numbers and booleans are
not ids (422); ``42.0`` is 42, as JSON and the OpenAPI schema do not tell them apart.
Request fields take exactly the JSON types the schema gives them, nothing else is coerced
(``"k": "5"`` or ``"exclude_seen": 0`` get 422).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

__all__ = ["ErrorBody", "EventIn", "EventOut", "Health", "ItemId", "JsonInt", "ModelInfo",
           "RecommendIn", "RecommendOut", "ReloadOut", "SessionOut"]


def _json_int(value: Any) -> Any:
    """A JSON integer (``5`` or ``5.0``), not text or a boolean (pydantic's lax ``int`` takes
    ``"5"`` and ``true``; its strict one refuses ``5.0``, which the schema allows)."""
    if isinstance(value, str | bool):
        raise ValueError("Input should be a JSON integer")
    return value


def _whole_to_int(value: Any) -> Any:
    """``5.0`` -> ``5`` (one JSON number, and an OpenAPI ``integer``); the rest as it is."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_json_int)]
# the validator is on the union, not a member: errors keep the plain labels (item_id.int: ...)
ItemId = Annotated[StrictInt | StrictStr, BeforeValidator(_whole_to_int)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_In):
    """A click of a live session."""

    item_id: ItemId = Field(description="The clicked item (JSON int or string).")
    k: JsonInt | None = Field(None, description="List length, 1..max_k (default: the "
                                                  "server's).")
    exclude_seen: StrictBool = Field(False, description="Leave out the session's own items.")
    user_id: ItemId | None = Field(
        None, description="Who clicked (JSON int or string). With a sequence-aware model "
                          "(session_boundary=carry), a new session of a user the model was "
                          "trained on starts from that user's training state.")


class EventOut(BaseModel):
    session_id: str
    items: list[ItemId] = Field(description="Top-k item ids, best first.")
    scores: list[float]
    length: int = Field(description="Known events the session's state has seen.")
    unknown_item: bool = Field(description="The item is not in the model: the state did not "
                                           "advance.")


class RecommendIn(_In):
    """A whole session, scored without keeping any state."""

    items: list[ItemId] = Field(description="The session's item ids, oldest first "
                                            "(at most max_session_length).")
    k: JsonInt | None = None
    exclude_seen: StrictBool = False
    candidates: list[ItemId] | None = Field(None, description="Recommend only these items.")
    exclude: list[ItemId] | None = Field(None, description="Never recommend these items.")


class RecommendOut(BaseModel):
    items: list[ItemId]
    scores: list[float]
    unknown: int = Field(description="Unknown item ids skipped in ``items``.")


class SessionOut(BaseModel):
    session_id: str
    length: int
    items: list[ItemId] = Field(description="The most recent items the model knows, oldest "
                                            "first.")
    last_seen: float = Field(description="Unix time of the last event.")


class ModelInfo(BaseModel):
    n_items: int
    layers: list[int]
    loss: str
    config: dict[str, Any]
    sha256: str = Field(description="SHA-256 of the model file (its first 16 hex digits are "
                                    "the X-Gru4rec-Model header of answers).")
    source: str = Field(description="The model file, or 'in-memory'.")
    loaded_at: float = Field(description="Unix time this worker loaded the model.")
    reloads: int = Field(description="Models this worker swapped in since it started.")
    store: str


class ReloadOut(BaseModel):
    status: str = Field(description="'reloaded' (now answering; with several workers, the "
                                    "others follow a moment later) or 'unchanged' (same file "
                                    "contents).")
    sha256: str = Field(description="SHA-256 of the model file now on disk.")
    previous_sha256: str = Field(description="SHA-256 of the model that answered before.")


class Health(BaseModel):
    status: str
    store: str
    store_reachable: bool
    sessions: int | None = Field(description="Live sessions this worker's in-process store "
                                             "holds (at most --max-sessions); null for Redis.")


class _Error(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code": ..., "message": ...}}``."""

    error: _Error
