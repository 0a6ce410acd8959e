"""The automatic stop of a training: when the held-out validation loss has converged.

An exponential average of the validation losses, a patience, a floor and a ceiling of iterations and a
wall-clock budget (:class:`Stopper`); or, with ``epochs`` > 0, the fixed count of the paper (§5.1).
"""
from __future__ import annotations

from typing import Optional

from .config import TrainConfig

STOP_REASONS = ("plateau", "max_iterations", "max_minutes", "epochs")


class Stopper:
    """The automatic stop: smoothed held-out loss, patience, floor, ceiling and time budget.

    ``update(val_loss, iteration)`` after each validation returns whether this validation is
    the best so far (smoothed); ``reason(iteration, minutes)`` returns why training must stop
    now (one of ``STOP_REASONS``) or None.  The state is a plain dict for the checkpoint.
    """

    SMOOTHING = 0.5   # weight of the newest validation in the exponential average

    def __init__(self, cfg: TrainConfig, total_fixed: Optional[int] = None):
        self.cfg = cfg
        self.total_fixed = total_fixed
        self.state = {"ema": None, "best": None, "best_iteration": 0, "bad": 0}

    def update(self, val_loss: float, iteration: int) -> bool:
        st = self.state
        st["ema"] = val_loss if st["ema"] is None else \
            self.SMOOTHING * val_loss + (1 - self.SMOOTHING) * st["ema"]
        if st["best"] is None or st["ema"] < st["best"] - self.cfg.min_delta * abs(st["best"]):
            st["best"], st["best_iteration"], st["bad"] = st["ema"], iteration, 0
            return True
        st["bad"] += 1
        return False

    def reason(self, iteration: int, minutes: float, validated: bool) -> Optional[str]:
        c = self.cfg
        if c.max_minutes and minutes >= c.max_minutes:
            return "max_minutes"
        if self.total_fixed is not None:
            return "epochs" if iteration >= self.total_fixed else None
        if iteration >= c.max_iterations:
            return "max_iterations"
        if validated and iteration >= c.min_iterations and self.state["bad"] >= c.patience:
            return "plateau"
        return None

    def explain(self, reason: str, iteration: int) -> str:
        c, st = self.cfg, self.state
        return {"plateau": f"the smoothed validation loss has not improved by {c.min_delta:g} (relative) for "
                           f"{c.patience} validations (best at iteration {st['best_iteration']})",
                "max_iterations": f"the ceiling of {c.max_iterations} iterations was reached",
                "max_minutes": f"the time budget of {c.max_minutes:g} min was reached at iteration {iteration}",
                "epochs": f"the fixed count of {c.epochs} epochs x {c.iterations_per_epoch} iterations was done",
                }[reason]
