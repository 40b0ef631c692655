"""The auxiliary-loss formula, the LightningModule's step, its logging and its optimizer."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.optim.lr_scheduler import OneCycleLR

from pairmnist.checks import BadValue
from pairmnist.models.module import PairModule, pair_loss, predict
from pairmnist.models.nets import PairNet, Shallow
from pairmnist.train import build


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    logits, digits = torch.randn(6, 2, generator=g), torch.randn(6, 2, 10, generator=g)
    classes = torch.randint(0, 10, (6, 2), generator=g)
    return logits, digits, (classes[:, 0] <= classes[:, 1]).long(), classes


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_aux_loss_formula(batch, w):
    logits, digits, target, classes = batch
    ce_target = F.cross_entropy(logits, target)
    ce_digits = (F.cross_entropy(digits[:, 0], classes[:, 0]) + F.cross_entropy(digits[:, 1], classes[:, 1])) / 2
    expected = (1 - w) * ce_target + w * ce_digits
    assert math.isclose(pair_loss(logits, digits, target, classes, w).item(), expected.item(), rel_tol=1e-6)


def test_aux_loss_needs_digit_outputs(batch):
    logits, _, target, classes = batch
    assert torch.equal(pair_loss(logits, None, target, classes, 0.0), F.cross_entropy(logits, target))
    adam = partial(torch.optim.Adam, lr=1e-3)
    with pytest.raises(BadValue, match=r"^aux_weight=0.5: allowed: 0 \(this net has no digit outputs\)$"):
        PairModule(Shallow, optimizer=adam, aux_weight=0.5)
    with pytest.raises(BadValue, match="^aux_weight=0.5: allowed: 1"):  # the digits head passes no gradient
        PairModule(partial(PairNet, head="digits"), optimizer=adam, aux_weight=0.5)


def test_predict_counts_ties_as_one():
    assert predict(torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.3, 0.3]])).tolist() == [1, 0, 1]


def test_aux_weight_one_leaves_the_learned_head_without_gradient(batch):
    _, _, target, classes = batch
    with pytest.warns(UserWarning, match="no gradient"):
        module = PairModule(PairNet, optimizer=partial(torch.optim.Adam, lr=1e-3), aux_weight=1.0)
    loss = module.training_step((torch.randn(6, 2, 14, 14), target, classes), 0)
    loss.backward()
    assert all(p.grad is None or not p.grad.any() for p in module.nets[0].head.parameters())
    assert any(p.grad.any() for p in module.nets[0].branches.parameters())


def test_optimizer_and_schedule_are_the_configs(make_cfg):
    """siamese: Adam at model.optimizer.lr, no schedule; siamese_plus: AdamW with weight decay, one-cycle
    stepped after every batch over the run's steps."""
    cfg = make_cfg("model=siamese", "model.optimizer.lr=3e-4")
    module = instantiate(cfg.model)
    optimizer = module.configure_optimizers()
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 3e-4 == module.lr
    assert optimizer.defaults["weight_decay"] == 0

    datamodule, module, trainer = build(make_cfg("model=siamese_plus", "trainer.max_epochs=2"))
    trainer.fit(module, datamodule=datamodule)
    (optimizer,), (schedule,) = trainer.optimizers, trainer.lr_scheduler_configs
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["weight_decay"] == 1e-4
    assert isinstance(schedule.scheduler, OneCycleLR) and schedule.interval == "step"
    assert schedule.scheduler.total_steps == trainer.global_step == 2 * 120 // 20  # swapped pairs: 120 a epoch
    assert max(schedule.scheduler.get_last_lr()) < 3e-3 == module.lr  # annealed from the peak


@pytest.mark.parametrize(
    "scheduler, lr",
    [  # 4 epochs of 3 batches: stepped once per epoch (4 times, halving twice), not once per batch (12)
        ("{_target_:torch.optim.lr_scheduler.StepLR,_partial_:true,step_size:2,gamma:0.5}", 1e-3 * 0.5**2),
        (
            "{_target_:torch.optim.lr_scheduler.ReduceLROnPlateau,_partial_:true,patience:0,factor:0.5,threshold:100,threshold_mode:abs}",
            None,
        ),
    ],
)
def test_a_scheduler_from_the_config_steps_once_per_epoch(make_cfg, scheduler, lr):
    cfg = make_cfg(f"model.scheduler={scheduler}", "trainer.max_epochs=4", "data.n_pairs=300", "data.batch_size=100")
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    (schedule,) = trainer.lr_scheduler_configs
    assert schedule.interval == "epoch" and schedule.monitor == "val/loss" and trainer.global_step == 12
    (group,) = trainer.optimizers[0].param_groups
    if lr is not None:
        assert schedule.scheduler.last_epoch == 4 and group["lr"] == pytest.approx(lr)
    else:  # no epoch after the first improves val/loss by 100: the plateau halves the rate after each of them
        assert group["lr"] == pytest.approx(1e-3 * 0.5**3)


def test_epoch_metrics_are_logged_the_lightning_way(make_cfg):
    """After fit, callback_metrics holds the last epoch's metrics; TensorBoard's x-axis is the epoch."""
    cfg = make_cfg("model=twin", "trainer.max_epochs=3")
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    metrics = trainer.callback_metrics
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "val/digit_acc"} <= metrics.keys()
    assert metrics["val/acc"].item() == module.history["val_acc"][-1]
    assert metrics["train/loss"].item() == module.history["train_loss"][-1]
    assert {"train/loss", "train/acc", "val/loss", "val/acc"} == trainer.progress_bar_metrics.keys()
    (events,) = Path(cfg.paths.output_dir).glob("events.out.tfevents.*")
    curves = EventAccumulator(str(events))
    curves.Reload()
    assert [e.step for e in curves.Scalars("val/acc")] == [0, 1, 2]
    assert [e.value for e in curves.Scalars("train/loss")] == pytest.approx(module.history["train_loss"])


def test_label_smoothing_applies_to_the_digit_loss_only(batch):
    logits, digits, target, classes = batch
    eps = 0.1
    smooth = F.cross_entropy(digits.reshape(-1, 10), classes.reshape(-1), label_smoothing=eps)
    expected = 0.5 * F.cross_entropy(logits, target) + 0.5 * smooth
    assert torch.allclose(pair_loss(logits, digits, target, classes, 0.5, eps), expected)
    # by hand: (1 - eps) * CE + eps * mean over the 10 classes of -log p
    log_p = F.log_softmax(digits.reshape(-1, 10), -1)
    by_hand = ((1 - eps) * -log_p.gather(1, classes.reshape(-1, 1)).squeeze(1) + eps * -log_p.mean(1)).mean()
    assert torch.allclose(smooth, by_hand)


def test_ema_makes_the_final_model_the_average(make_cfg):
    cfg = make_cfg("model=siamese_plus", "trainer.max_epochs=2", "model.ema_decay=0.9")
    datamodule, module, trainer = build(cfg)
    assert [type(c).__name__ for c in module.configure_callbacks()] == ["EMAWeightAveraging"]
    trainer.fit(module, datamodule=datamodule)
    (ema,) = [c for c in trainer.callbacks if type(c).__name__ == "EMAWeightAveraging"]
    averaged = dict(ema._average_model.module.named_parameters())
    assert all(torch.equal(p, averaged[name]) for name, p in module.named_parameters())  # the average is final
    assert build(make_cfg("model=siamese_plus"))[1].configure_callbacks() == []  # off by default


def _conv_weights(net):
    """Weights of the convolutions with several input channels (with one, both layouts are the same)."""
    return [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1]


def test_nets_are_channels_last_only_when_training_on_the_cpu():
    cpu = PairModule(PairNet, optimizer=partial(torch.optim.Adam))
    assert all(w.is_contiguous() for w in _conv_weights(cpu.nets))  # built in the default layout
    cpu.setup("fit")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(cpu.nets))
    other = PairModule(PairNet, optimizer=partial(torch.optim.Adam))
    other._device = torch.device("mps")  # as Lightning sets it before setup on Apple's GPU
    other.setup("fit")
    assert all(not w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(other.nets))


def _train_steps(module: PairModule, steps: int = 3) -> None:
    """A few plain optimisation steps on fixed random pairs (the same for every call)."""
    g = torch.Generator().manual_seed(1)
    classes = torch.randint(0, 10, (8, 2), generator=g)
    batch = (torch.randn(8, 2, 14, 14, generator=g), (classes[:, 0] <= classes[:, 1]).long(), classes)
    optimizer = module.configure_optimizers()
    for _ in range(steps):
        optimizer.zero_grad()
        module.training_step(batch, 0).backward()
        optimizer.step()


def test_an_ensemble_of_one_is_the_net_alone_and_each_member_trains_as_alone():
    """ensemble=1 keeps the single net; in an ensemble of 2 the first net is built, trained and updated
    exactly as the single one (bit for bit: the nets learn from their own losses), the second starts elsewhere."""
    modules = {}
    for k in (1, 2):
        torch.manual_seed(0)
        modules[k] = PairModule(PairNet, optimizer=partial(torch.optim.Adam, lr=1e-3), aux_weight=0.5, ensemble=k)
    single, double = modules[1], modules[2]
    assert len(single.nets) == 1 and len(double.nets) == 2
    first, second = (dict(net.named_parameters()) for net in double.nets)
    assert all(not torch.equal(first[k], second[k]) for k in first)  # independently initialised
    _train_steps(single)
    _train_steps(double)
    assert all(torch.equal(p, first[k]) for k, p in single.nets[0].named_parameters())


@pytest.mark.parametrize("head", ["probabilistic", "learned"])
def test_an_ensemble_averages_the_digit_probabilities(head):
    """Evaluation: digits = log of the nets' mean digit probabilities; a parameter-free head compares those,
    a learned head's comparison probabilities are averaged."""
    torch.manual_seed(0)
    module = PairModule(partial(PairNet, head=head), optimizer=partial(torch.optim.Adam, lr=1e-3), ensemble=3).eval()
    x = torch.randn(5, 2, 14, 14)
    logits, digits = module(x)
    outputs = [net(x) for net in module.nets]
    mean_p = torch.stack([F.softmax(d, -1) for _, d in outputs]).mean(0)
    torch.testing.assert_close(digits.exp(), mean_p)
    if head == "probabilistic":
        torch.testing.assert_close(logits, module.nets[0].head(mean_p.log()))
    else:
        torch.testing.assert_close(logits.exp(), torch.stack([F.softmax(c, -1) for c, _ in outputs]).mean(0))
