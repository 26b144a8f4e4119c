"""GRU4Rec hyperparameters: one frozen dataclass, its validation and value conversion.

Names follow the official implementations, so parameter strings and files written for them
work unchanged. Both spellings of the final activation are accepted: Theano-style
``final_act=elu-0.5`` and PyTorch-style ``elu_param=0.5`` mean the same thing.

Sources:
    - parameter strings ``loss=bpr-max,layers=100/100,constrained_embedding=True``
      (``/`` separates list items),
    - ``.py`` parameter files holding ``gru4rec_params = OrderedDict([...])``; the file is
      parsed as literals, never executed,
    - ``.toml`` files with the parameters at the top level (or under ``[gru4rec_params]``),
    - plain mappings (``GRU4RecConfig.from_dict``).

The text sources are read by :mod:`gru4rec.params` (its two parsers are re-exported here);
every one ends in :meth:`GRU4RecConfig.from_dict`. Every validation problem is collected
and reported in one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gru4rec.errors import ConfigError
from gru4rec.params import parse_param_file, parse_param_string

__all__ = ["ADAPTS", "LOSSES", "SESSION_BOUNDARIES", "GRU4RecConfig", "canonical_activation",
           "parse_param_file", "parse_param_string"]

log = logging.getLogger(__name__)

SESSION_BOUNDARIES = ("reset", "carry")
LOSSES = ("cross-entropy", "bpr-max", "top1-max", "top1", "bpr", "xe_logit")
# optimiser -> default adapt_params (decay factors); "sgd" is the original's adapt=None
ADAPTS: dict[str, tuple[float, ...]] = {"adagrad": (), "rmsprop": (0.9,), "adam": (0.9, 0.999),
                                        "adadelta": (0.95,), "sgd": ()}
_NO_ADAPT = ("None", "none", "sgd", "")


@dataclass(frozen=True)
class GRU4RecConfig:
    """Every GRU4Rec hyperparameter, with the official names and PyTorch-version defaults.

    Attributes:
        layers: units of each GRU layer, e.g. ``(100,)`` or ``(200, 200)``.
        loss: ``cross-entropy``, ``bpr-max``, ``top1-max``, or the legacy ``top1``, ``bpr``
            and ``xe_logit``.
        final_act: the output activation (see :func:`canonical_activation`); when not given
            it follows the loss: ``softmax`` for cross-entropy, ``softmax_logit`` for
            xe_logit, else ``elu-X`` with X = elu_param (``linear`` when elu_param is 0).
        hidden_act: activation of the GRU candidate state (``tanh``, ``linear``, ``relu``,
            ``leaky-X``, ``elu-X``, ``selu-X-Y``).
        adapt: optimiser: ``adagrad``, ``rmsprop``, ``adam``, ``adadelta``, or ``sgd``
            (the original's ``adapt=None``: plain gradient steps).
        adapt_params: the optimiser's decay factors (rmsprop: decay; adam: beta1, beta2;
            adadelta: decay); empty = the defaults in :data:`ADAPTS`.
        n_epochs: passes over the training data.
        batch_size: number of session-parallel slots B.
        dropout_p_embed: dropout on the input embedding (no-embedding mode: on the first GRU
            layer's output).
        dropout_p_hidden: dropout on the output of each (other) GRU layer.
        learning_rate: step size of the optimiser.
        momentum: momentum on the optimiser's step (0 = none).
        lmbd: L2 regularisation: lmbd * p is added to the gradient of every weight a step
            updates (item tables: the touched rows).
        grad_cap: clip the gradients of a step to this global L2 norm (0 = off).
        adagrad_init: starting value of Adagrad's squared-gradient accumulator, for every
            weight (item-table rows included); 0 = the original. A small positive value
            (e.g. 1e-4) keeps the first steps from moving every weight by the full learning
            rate (g / sqrt(g^2 + 1e-6) is +-1 for any gradient above ~1e-3). Adagrad only.
        sample_alpha: extra negatives drawn with probability support**sample_alpha.
        n_sample: number of extra negatives shared by a mini-batch (0 = in-batch only).
        embedding: size of a separate item embedding (0 = none; ``layersize`` = layers[0]).
        constrained_embedding: use the output weights as the input embedding.
        bpreg: score regularisation of bpr-max.
        elu_param: ELU parameter of the output of bpr-max and the other ranking losses
            (0 = linear).
        logq: weight of the logQ correction of the cross-entropy losses (0 = off).
        smoothing: label smoothing of the cross-entropy losses (0 = off).
        sigma: initialise weights uniform in +-sigma (0 = the adaptive default
            sqrt(6 / (fan_in + fan_out))).
        init_as_normal: draw initial weights from a normal distribution with standard
            deviation sigma (or the adaptive value) instead of the uniform one.
        train_random_order: visit the training sessions in a new random order every epoch.
        time_sort: visit sessions in the order of their first event (else in session-id
            order); ignored with train_random_order.
        session_boundary: with a user column, what happens to the hidden state where one
            of the user's sessions ends and the next begins: ``reset`` (to zero: the
            session-based GRU4Rec, which then ignores the users in training) or ``carry``
            (sequence-aware: each user's history is one sequence, the next session starts
            from the state the last one ended in).
        bptt: truncated back-propagation through time over this many consecutive steps:
            the summed loss of ``bptt`` steps is back-propagated through all of them before
            one update (1 = the original: every step on its own).

    Raises:
        ConfigError: on construction, when any value is out of range or not one of its
            choices (unknown loss, optimiser or activation, wrong number of adapt_params,
            logq or smoothing with a ranking loss, ...); every problem is listed in the one
            error (``.problems``). An unusual loss/output pairing only logs a warning.
    """

    layers: tuple[int, ...] = (100,)
    loss: str = "cross-entropy"
    final_act: str = ""
    hidden_act: str = "tanh"
    adapt: str = "adagrad"
    adapt_params: tuple[float, ...] = ()
    n_epochs: int = 10
    batch_size: int = 64
    dropout_p_embed: float = 0.0
    dropout_p_hidden: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.0
    lmbd: float = 0.0
    grad_cap: float = 0.0
    adagrad_init: float = 0.0
    sample_alpha: float = 0.5
    n_sample: int = 2048
    embedding: int = 0
    constrained_embedding: bool = True
    bpreg: float = 1.0
    elu_param: float = 0.5
    logq: float = 0.0
    smoothing: float = 0.0
    sigma: float = 0.0
    init_as_normal: bool = False
    train_random_order: bool = False
    time_sort: bool = True
    session_boundary: str = "reset"
    bptt: int = 1

    def __post_init__(self) -> None:
        problems: list[str] = []
        _normalise(self, "hidden_act", final=False, problems=problems)
        if self.final_act:
            if _normalise(self, "final_act", final=True, problems=problems):
                if self.final_act.startswith("elu-"):  # final_act=elu-X: elu_param=X
                    object.__setattr__(self, "elu_param", float(self.final_act[4:]))
                elif self.final_act == "linear":  # and linear is elu_param=0
                    object.__setattr__(self, "elu_param", 0.0)
        else:
            object.__setattr__(self, "final_act", _default_final_act(self.loss,
                                                                     self.elu_param))
        if self.adapt in _NO_ADAPT:
            object.__setattr__(self, "adapt", "sgd")
        if not self.adapt_params and self.adapt in ADAPTS:
            object.__setattr__(self, "adapt_params", ADAPTS[self.adapt])
        _raise_if(problems + _problems(self))
        usual = _usual_final_act(self.loss, self.final_act)
        if usual:
            log.warning("final_act=%s with loss=%s is an unusual pairing (it runs as the "
                        "original did); the usual output is %s", self.final_act, self.loss,
                        usual)

    @classmethod
    def field_names(cls) -> list[str]:
        """The accepted parameter names (public fields), in declaration order."""
        return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]

    @classmethod
    def from_dict(cls, params: Mapping[str, Any]) -> GRU4RecConfig:
        """Build a config from ``{name: value}``; values may be strings (as in ``-ps``).

        Raises:
            ConfigError: unknown names (the message lists the valid ones), values that do not
                convert to their field's type, or values out of range; all in one error.
        """
        return cls().replace(**params)

    def replace(self, **params: Any) -> GRU4RecConfig:
        """A copy with some parameters changed (strings are converted like ``-ps`` values).

        Raises:
            ConfigError: as :meth:`from_dict`.
        """
        values, problems = _convert_all(params)
        if "final_act" not in values and ("loss" in values or "elu_param" in values):
            values["final_act"] = ""  # re-derived from the (new) loss / elu_param
        if "adapt" in values and "adapt_params" not in values:
            values["adapt_params"] = ()  # the new optimiser's defaults
        cfg = self
        try:
            cfg = dataclasses.replace(self, **values)
        except ConfigError as exc:
            problems.extend(exc.problems)
        _raise_if(problems)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Plain ``{name: value}`` of every public field (lists for tuples)."""
        out = {}
        for name in self.field_names():
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out


def _raise_if(problems: list[str]) -> None:
    """Raise one ConfigError listing every problem (its ``problems`` attribute keeps them)."""
    if problems:
        raise ConfigError("invalid GRU4Rec parameters:\n  - " + "\n  - ".join(problems),
                          problems)


def canonical_activation(spec: str, *, final: bool) -> str:
    """The normalised spelling of an activation (``elu-0.50`` -> ``elu-0.5``).

    Valid: ``linear``, ``relu``, ``tanh``, ``leaky-X``, ``elu-X``, ``selu-X-Y`` and, for the
    output (``final``), ``softmax`` and ``softmax_logit``.

    Raises:
        ValueError: any other spelling, or a parameter that is not a number (the message
            lists the valid forms).
    """
    name, *args = spec.strip().split("-")
    if not args and (name in _PLAIN_ACTS or (final and name in _FINAL_ONLY_ACTS)):
        return name
    if name in _PARAM_ACTS and len(args) == _PARAM_ACTS[name]:
        try:
            return "-".join([name, *(repr(float(a)) for a in args)])
        except ValueError:
            pass
    forms = [*(_FINAL_ONLY_ACTS if final else ()), *_PLAIN_ACTS, "leaky-X", "elu-X",
             "selu-X-Y"]
    raise ValueError(f"unknown activation {spec!r}; use one of {', '.join(forms)}")


_PLAIN_ACTS = ("linear", "relu", "tanh")
_FINAL_ONLY_ACTS = ("softmax", "softmax_logit")
_PARAM_ACTS = {"leaky": 1, "elu": 1, "selu": 2}


def _normalise(cfg: GRU4RecConfig, name: str, *, final: bool, problems: list[str]) -> bool:
    """Canonicalise the activation field ``name`` in place; False (and a problem) if bad."""
    try:
        object.__setattr__(cfg, name, canonical_activation(getattr(cfg, name), final=final))
        return True
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
        return False


def _default_final_act(loss: str, elu_param: float) -> str:
    if loss == "cross-entropy":
        return "softmax"
    if loss == "xe_logit":
        return "softmax_logit"
    return f"elu-{float(elu_param)!r}" if elu_param > 0 else "linear"  # repr: exact round trip


def _usual_final_act(loss: str, act: str) -> str:
    """"" when ``act`` is a usual output activation for ``loss``, else the usual one(s)."""
    if loss in ("cross-entropy", "xe_logit"):
        usual = _default_final_act(loss, 0.0)
        return "" if act == usual else f"final_act={usual}"
    if loss in LOSSES and act in _FINAL_ONLY_ACTS:
        return "final_act=linear or elu-X (scores, not probabilities)"
    return ""


def _problems(cfg: GRU4RecConfig) -> list[str]:
    """Every range/choice problem of a config, as readable one-liners."""
    p: list[str] = []
    if not cfg.layers or any(n <= 0 for n in cfg.layers):
        p.append(f"layers must be positive unit counts, got {list(cfg.layers)}")
    if cfg.loss not in LOSSES:
        p.append(f"loss must be one of {', '.join(LOSSES)}; got {cfg.loss!r}")
    if cfg.adapt not in ADAPTS:
        p.append(f"adapt must be one of {', '.join(ADAPTS)} (or None); got {cfg.adapt!r}")
    elif len(cfg.adapt_params) != len(ADAPTS[cfg.adapt]):
        p.append(f"adapt={cfg.adapt} takes {len(ADAPTS[cfg.adapt])} adapt_params, got "
                 f"{list(cfg.adapt_params)}")
    elif any(not 0.0 <= a < 1.0 for a in cfg.adapt_params):
        p.append(f"adapt_params are decay factors in [0, 1), got {list(cfg.adapt_params)}")
    for name in ("n_epochs", "batch_size"):
        if getattr(cfg, name) < 1:
            p.append(f"{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("dropout_p_embed", "dropout_p_hidden"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            p.append(f"{name} must be in [0, 1), got {getattr(cfg, name)}")
    for name in ("learning_rate",):
        if not getattr(cfg, name) > 0:
            p.append(f"{name} must be > 0, got {getattr(cfg, name)}")
    for name in ("momentum", "sample_alpha", "bpreg", "elu_param", "logq", "n_sample", "lmbd",
                 "grad_cap", "sigma", "adagrad_init"):
        if getattr(cfg, name) < 0:
            p.append(f"{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.momentum >= 1:
        p.append(f"momentum must be < 1, got {cfg.momentum}")
    if cfg.adagrad_init > 0 and cfg.adapt != "adagrad":
        p.append(f"adagrad_init applies to adapt=adagrad only (got adapt={cfg.adapt}); "
                 "set adagrad_init=0")
    if cfg.embedding < 0:
        p.append(f"embedding must be >= 0 (or 'layersize'), got {cfg.embedding}")
    if cfg.logq > 0 and cfg.loss not in ("cross-entropy", "xe_logit"):
        p.append("logq applies to the cross-entropy losses only; set logq=0")
    if cfg.session_boundary not in SESSION_BOUNDARIES:
        p.append(f"session_boundary must be one of {', '.join(SESSION_BOUNDARIES)}; got "
                 f"{cfg.session_boundary!r}")
    if cfg.bptt < 1:
        p.append(f"bptt must be >= 1, got {cfg.bptt}")
    if not 0.0 <= cfg.smoothing < 1.0:
        p.append(f"smoothing must be in [0, 1), got {cfg.smoothing}")
    elif cfg.smoothing > 0 and cfg.loss not in ("cross-entropy", "xe_logit"):
        p.append("smoothing applies to the cross-entropy losses only; set smoothing=0")
    return p


# ----------------------------------------------------------------------------- conversion

_FIELD_TYPES: dict[str, str] = {
    f.name: str(f.type) for f in dataclasses.fields(GRU4RecConfig) if not f.name.startswith("_")
}


def _convert_all(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Convert every value to its field's type; collect unknown names and bad values."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    unknown = [k for k in params if k not in _FIELD_TYPES]
    if unknown:
        problems.append(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; valid names are: "
            + ", ".join(_FIELD_TYPES)
        )
    layers = params.get("layers", None)
    for name, raw in params.items():
        if name not in _FIELD_TYPES:
            continue
        try:
            values[name] = _convert(name, raw, layers)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name}={raw!r}: {exc}")
    return values, problems


def _convert(name: str, raw: Any, layers: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if name == "layers":
        return _to_layers(raw)
    if name == "adapt" and raw is None:  # adapt=None in the original's parameter files
        return "sgd"
    if name == "adapt_params":
        return _to_floats(raw)
    if name == "embedding" and isinstance(raw, str) and raw.strip() == "layersize":
        return _to_layers(layers)[0] if layers is not None else GRU4RecConfig.layers[0]
    if kind == "bool":
        return _to_bool(raw)
    if kind == "int":
        return _to_int(raw)
    if kind == "float":
        return _to_float(raw)
    if not isinstance(raw, str):
        raise TypeError(f"expected a string, got {type(raw).__name__}")
    return raw.strip()


def _to_layers(raw: Any) -> tuple[int, ...]:
    if isinstance(raw, str):
        raw = [part for part in raw.split("/") if part.strip()]
    elif isinstance(raw, int) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise TypeError("expected a unit count or a list of them (e.g. 100 or 200/200)")
    return tuple(_to_int(x) for x in raw)


def _to_floats(raw: Any) -> tuple[float, ...]:
    if isinstance(raw, str):
        raw = [part for part in raw.split("/") if part.strip()]
    elif isinstance(raw, int | float) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        raise TypeError("expected a number or a list of numbers (e.g. 0.9/0.999)")
    return tuple(_to_float(x) for x in raw)


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip() in ("True", "False"):
        return raw.strip() == "True"
    raise TypeError("expected True or False")


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise TypeError("expected an integer, got a boolean")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise TypeError("expected an integer")


def _to_float(raw: Any) -> float:
    if isinstance(raw, bool):
        raise TypeError("expected a number, got a boolean")
    value: float | None = None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            pass
    if value is None:
        raise TypeError("expected a number")
    if not math.isfinite(value):  # nan / inf would train nonsense or diverge silently
        raise TypeError(f"expected a finite number, got {raw!r}")
    return value
