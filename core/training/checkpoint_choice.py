"""Which epoch's weights a training run keeps, and the plain-language note that says why.

Why a rule at all: with a handful of images, "hold out 10 %" means one validation image, and
its mIoU swings from epoch to epoch whenever a class missing from that image gets a few
predicted pixels (that class's IoU on it drops from "not counted" to 0).  Keeping the epoch with
the best such score keeps noise.  So:

* **Fewer than ``FEW_IMAGES`` images (or ``val_fraction`` 0): train on all of them** for the
  fixed budget (epochs x steps, cosine learning rate decaying to zero) and keep the last
  epoch's weights.  Nothing is held out, so there is no held-out score; the mIoU reported each
  epoch is measured on the training images and says how well they are fitted, nothing more.
* **Otherwise hold out** ``max(MIN_VAL_IMAGES, round(n * val_fraction))`` images and keep the
  epoch whose validation mIoU, averaged over it and the ``SMOOTH_EPOCHS - 1`` epochs before
  it, is highest.  Each epoch's score pools the pixels of every validation image into one
  confusion matrix (core.metrics): a class counts where it occurs in the masks or in the
  prediction, over all validation images together, so one image lacking a class does not
  decide that class's IoU.

The choice is written into the checkpoint's ``training.selection`` metadata and onto
``TrainResult.note``, which the training dialog and the CLI show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FEW_IMAGES = 20  # below this many images nothing is held out
MIN_VAL_IMAGES = 4  # never choose an epoch on fewer held-out images than this
SMOOTH_EPOCHS = 3  # the validation score is a trailing mean over this many epochs

LAST_EPOCH, HELD_OUT = "last-epoch", "held-out"


def split_images(n: int, val_fraction: float, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """(training indices, validation indices) under the rule above; validation may be empty."""
    order = rng.permutation(n).tolist()
    if n < FEW_IMAGES or val_fraction <= 0:
        return sorted(order), []
    n_val = min(n // 2, max(MIN_VAL_IMAGES, int(round(n * val_fraction))))
    return sorted(order[n_val:]), sorted(order[:n_val])


@dataclass
class EpochChooser:
    """Decides, epoch by epoch, whether this epoch's weights replace the kept ones."""

    train_images: int
    val_images: int
    scores: list[float] = field(default_factory=list)  # each epoch's pooled mIoU
    best: float = -1.0  # the kept epoch's selection score

    @property
    def rule(self) -> str:
        return HELD_OUT if self.val_images else LAST_EPOCH

    def selection_score(self) -> float:
        """This epoch's score for the choice: the trailing mean over up to SMOOTH_EPOCHS epochs."""
        return float(np.mean(self.scores[-SMOOTH_EPOCHS:]))

    def keep(self, miou: float) -> bool:
        """Record an epoch's pooled mIoU; True if its weights are to be kept."""
        self.scores.append(miou)
        if self.rule == LAST_EPOCH:
            return True  # the fixed budget's latest weights; the score is not held out
        score = self.selection_score()
        if score > self.best:
            self.best = score
            return True
        return False

    def note(self, kept_epoch: int, epochs: int, stopped_early: bool = False) -> str:
        """What was done and why, in two or three sentences, for the dialog and the checkpoint
        (``epochs``: the planned number)."""
        total = self.train_images + self.val_images
        stopped = " Training was stopped early." if stopped_early else ""
        if self.rule == LAST_EPOCH:
            return (f"Trained on all {total} images and kept the weights of the latest epoch ({kept_epoch} of "
                    f"{epochs}).{stopped} With fewer than {FEW_IMAGES} images, holding one or two out would "
                    f"leave the choice of epoch to chance (one class missing from one image swings its score), "
                    f"so none were held out: there is no held-out score, and the mIoU shown is measured on the "
                    f"training images.")
        return (f"Held out {self.val_images} of {total} images and kept epoch {kept_epoch} of {epochs}: the "
                f"best validation mIoU averaged over up to {SMOOTH_EPOCHS} consecutive epochs.{stopped} Each "
                f"epoch's mIoU pools all validation pixels; a class counts where it is in the masks or the "
                f"predictions.")

    def to_json(self, kept_epoch: int, epochs: int) -> dict:
        return {"rule": self.rule, "few_images": FEW_IMAGES, "smooth_epochs": SMOOTH_EPOCHS,
                "note": self.note(kept_epoch, epochs)}
