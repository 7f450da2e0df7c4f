"""Voxel-space losses: Lovasz-softmax against a per-class reference, masking, class weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from easyocc.runtime.contract.errors import EasyOccError  # noqa: E402
from easyocc.training.losses import (  # noqa: E402
    class_weights_from_counts,
    count_classes,
    lovasz_softmax,
    occupancy_loss,
)


def lovasz_reference(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Berman et al.'s per-class loop, written out plainly."""
    losses = []
    for c in range(probs.shape[1]):
        fg = (labels == c).float()
        if fg.sum() == 0:
            continue
        errors = (fg - probs[:, c]).abs()
        order = torch.argsort(errors, descending=True)
        fg_sorted = fg[order]
        gts = fg_sorted.sum()
        jaccard = 1 - (gts - fg_sorted.cumsum(0)) / (gts + (1 - fg_sorted).cumsum(0))
        grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(float((errors[order] * grad).sum()))
    return float(np.mean(losses))


def test_lovasz_matches_reference_and_is_zero_when_perfect():
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(500, 6, generator=gen).softmax(1)
    labels = torch.randint(0, 4, (500,), generator=gen)  # classes 4 and 5 absent: skipped
    assert float(lovasz_softmax(probs, labels)) == pytest.approx(lovasz_reference(probs, labels), rel=1e-5)
    perfect = torch.nn.functional.one_hot(labels, 6).float()
    assert float(lovasz_softmax(perfect, labels)) == pytest.approx(0.0, abs=1e-7)


def test_unmasked_voxels_do_not_matter():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 18, 6, 5, 4, generator=gen, requires_grad=True)
    target = torch.randint(0, 18, (2, 6, 5, 4), generator=gen)
    mask = torch.rand(2, 6, 5, 4, generator=gen) > 0.5
    loss, parts = occupancy_loss(logits, target, mask)
    loss.backward()
    assert float(logits.grad.permute(0, 2, 3, 4, 1)[~mask].abs().max()) == 0.0
    assert parts["ce"] > 0 and parts["lovasz"] > 0
    changed = logits.detach().clone()
    changed.permute(0, 2, 3, 4, 1)[~mask] = 100.0
    assert float(occupancy_loss(changed, target, mask)[0]) == pytest.approx(float(loss.detach()))


def test_batch_loss_is_the_mean_of_sample_losses():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 18, 4, 4, 2, generator=gen)
    target = torch.randint(0, 18, (2, 4, 4, 2), generator=gen)
    mask = torch.ones(2, 4, 4, 2, dtype=torch.bool)
    mask[1, :2] = False  # unequal voxel counts: still a plain mean over samples (DDP equivalence)
    weights = torch.rand(18, generator=gen) + 0.5
    both = occupancy_loss(logits, target, mask, weights)[0]
    each = [occupancy_loss(logits[i : i + 1], target[i : i + 1], mask[i : i + 1], weights)[0] for i in (0, 1)]
    assert float(both) == pytest.approx(float(sum(each) / 2), rel=1e-6)


def test_lovasz_subset_is_reproducible_per_seed():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 18, 20, 20, 4, generator=gen)
    target = torch.randint(0, 18, (1, 20, 20, 4), generator=gen)
    mask = torch.ones_like(target, dtype=torch.bool)
    run = [occupancy_loss(logits, target, mask, lovasz_max_voxels=100, seeds=[s])[1]["lovasz"] for s in (7, 7, 8)]
    assert run[0] == run[1] != run[2]


def test_class_weights_from_frequencies():
    counts = np.array([700, 200, 100, 0])
    weights = class_weights_from_counts(counts)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, 1 / np.log(1.02 + np.array([0.7, 0.2, 0.1, 0.0])), rtol=1e-6)
    assert weights[3] == weights.max() and weights[0] == weights.min()
    with pytest.raises(EasyOccError, match="non-empty"):
        class_weights_from_counts([0, 0])
    semantics = np.array([[[0, 1], [17, 17]]], np.uint8)
    mask = np.array([[[1, 0], [1, 1]]], np.uint8)
    assert count_classes(semantics, mask)[[0, 1, 17]].tolist() == [1, 0, 2]


def test_shape_mismatch_is_named():
    with pytest.raises(EasyOccError, match="disagree"):
        occupancy_loss(
            torch.zeros(1, 18, 4, 4, 2),
            torch.zeros(1, 4, 4, 3, dtype=torch.long),
            torch.ones(1, 4, 4, 3, dtype=torch.bool),
        )


def test_larger_enet_constant_damps_the_weights():
    from easyocc.training.config import load_config

    counts = np.array([65.0] * 17 + [9350.0])  # free dominates, as in camera-masked Occ3D labels
    enet, damped = class_weights_from_counts(counts), class_weights_from_counts(counts, 1.2)
    assert enet[0] / enet[17] > 20 and 1 < damped[0] / damped[17] < 6
    assert load_config(None, ["loss.class_weight_c=1.2"]).loss.class_weight_c == 1.2
    for c in (1.0, 0.5):
        with pytest.raises(EasyOccError, match=rf"the ENet constant c must be above 1, got {c}"):
            class_weights_from_counts(counts, c)
