"""The training step: one protocol (:class:`Step`, :class:`StepBatch`), three implementations.

- :class:`AutogradStep` (``autograd.py``): any configuration, gradients from autograd.
- :class:`ManualStep` (``manual.py``): the usual configurations (:data:`ManualStep.COVERS`),
  backward written by hand, arithmetic on a backend (compiled CPU kernels or PyTorch ops);
  with row weights it is the fixed-shape variant.
- :class:`GraphedStep` (``graphed.py``): the fixed-shape step captured as a CUDA graph.
- :class:`BPTTStep` (``bptt.py``): autograd through ``bptt`` consecutive steps, one update.

:func:`make_step` picks the one a configuration and the run options call for.
"""

from __future__ import annotations

from gru4rec.backend import TorchOps
from gru4rec.config import GRU4RecConfig
from gru4rec.errors import ConfigError
from gru4rec.nn.network import Network
from gru4rec.nn.optim import SparseOptimizer
from gru4rec.nn.steps.autograd import AutogradStep
from gru4rec.nn.steps.batch import Step, StepBatch, StepLoss
from gru4rec.nn.steps.bptt import BPTTStep
from gru4rec.nn.steps.graphed import GraphedStep
from gru4rec.nn.steps.manual import ManualStep

__all__ = ["AutogradStep", "BPTTStep", "GraphedStep", "ManualStep", "Step", "StepBatch", "StepLoss",
           "check_static_shapes", "make_step"]


def check_static_shapes(cfg: GRU4RecConfig) -> None:
    """Fixed-shape steps are the hand-written step with row weights: ``cfg`` must be one it
    covers.

    Raises:
        ConfigError: it is not.
    """
    if not ManualStep.supports(cfg):
        raise ConfigError("static_shapes needs a configuration the hand-written step "
                          f"covers: {ManualStep.COVERS}")


def make_step(net: Network, opt: SparseOptimizer, cfg: GRU4RecConfig, backend: TorchOps, *,
              reference: bool = False, static: bool = False) -> Step:
    """The step for ``cfg``: with ``bptt`` > 1 back-propagation through time; else the
    hand-written one where it covers the configuration (unless ``reference``), else
    autograd; ``static`` (fixed shapes) needs the hand-written one and is replayed as a CUDA
    graph on CUDA.

    Raises:
        ConfigError: ``static`` with a configuration the hand-written step does not cover,
            with ``reference``, or with ``bptt`` > 1.
    """
    if cfg.bptt > 1:
        if static:
            raise ConfigError("static_shapes runs the one-step hand-written step; with "
                              f"bptt={cfg.bptt} train without static_shapes")
        return BPTTStep(net, opt, cfg)
    if static:
        check_static_shapes(cfg)
        if reference:
            raise ConfigError("static_shapes runs the hand-written step; the reference "
                              "(autograd) step has no fixed-shape variant")
    if reference or not ManualStep.supports(cfg):
        return AutogradStep(net, opt, cfg)
    step = ManualStep(net, opt, cfg, backend)
    if static and net.device.type == "cuda":  # one launch per step instead of ~100
        return GraphedStep(step)
    return step
