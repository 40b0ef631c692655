"""Lightning overhead: the project's training path against a bare PyTorch loop, same work.

For each model, a 25-epoch run (1000 pairs, batch 100) two ways:
- project: ``pairmnist.train.build`` (datamodule + LightningModule + Trainer with the default
  callbacks and TensorBoard logger, exactly as ``src/run.py`` builds them) then
  ``Trainer.fit``; Trainer construction and the datamodule's setup are inside the timing;
- bare: a plain loop over the same nn.Module, the same (already built) data tensors, batch
  sizes (training and evaluation), optimizer (the config's), training steps, loss and
  per-epoch validation pass, accumulating loss and accuracy as the project does.
Reports the median of ``--repeats`` runs per side (the two sides alternate, so drifts of the
machine hit both alike), the ratio project/bare, and the achieved
GFLOP/s (training and validation FLOPs counted with ``torch.utils.flop_counter``). Also
times the data path (MNIST from the cache, pair generation), the process start-up, and
Lightning's floor: a bare ``Trainer`` (no logger, progress bar, checkpoint or summary)
fitting a one-weight model for the same 250 steps, against the same loop by hand; and the
cost of logging the epoch metrics the standard way (``self.log_dict``) against writing them
straight to the TensorBoard logger, on that one-weight model (the two sides alternate).

    python benchmarks/overhead.py                 # all models, 3 repetitions, 25 epochs
    python benchmarks/overhead.py --models siamese --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from pairmnist.data import PairMNISTDataModule, load_mnist, make_pair_splits
from pairmnist.data.mnist import _load as mnist_memo
from pairmnist.models.module import pair_loss, predict
from pairmnist.train import build

ROOT = Path(__file__).resolve().parents[1]


def compose_cfg(model: str, seed: int, epochs: int, out: Path, extra: list[str]) -> DictConfig:
    """The job config run.py would get for ``model=<model> seed=<seed>``."""
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose(
            "config",
            overrides=[f"model={model}", f"seed={seed}", f"trainer.max_epochs={epochs}", *extra],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    return cfg


def project_seconds(cfg: DictConfig) -> float:
    """Wall-clock seconds of build (Trainer construction included) + Trainer.fit."""
    start = time.perf_counter()
    datamodule, module, trainer = build(cfg)
    trainer.fit(module, datamodule=datamodule)
    return time.perf_counter() - start


def bare_seconds(cfg: DictConfig, dm: PairMNISTDataModule) -> float:
    """Wall-clock seconds of the same training as a plain PyTorch loop."""
    torch.manual_seed(cfg.seed)
    net = instantiate(cfg.model.net)().to(memory_format=torch.channels_last)  # as PairModule on the CPU
    aux_weight, batch_size = cfg.model.aux_weight, cfg.data.batch_size
    start = time.perf_counter()
    optimizer = instantiate(cfg.model.optimizer)(net.parameters())
    order = torch.Generator().manual_seed(cfg.seed)
    train, val = dm.train, dm.val
    for _ in range(cfg.trainer.max_epochs):
        net.train()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
        perm = torch.randperm(len(train.target), generator=order)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            x, y, c = train.input[idx], train.target[idx], train.classes[idx]
            logits, digits = net(x)
            loss = pair_loss(logits, digits, y, c, aux_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(y)
            correct += (predict(logits) == y).sum()
        net.eval()
        with torch.no_grad():
            val_loss, val_correct = torch.zeros(()), torch.zeros((), dtype=torch.long)
            for i in range(0, len(val.target), dm.eval_batch_size):
                x, y, c = (t[i : i + dm.eval_batch_size] for t in val)
                logits, digits = net(x)
                val_loss += pair_loss(logits, digits, y, c, aux_weight) * len(y)
                val_correct += (predict(logits) == y).sum()
        _ = (loss_sum.item(), correct.item(), val_loss.item(), val_correct.item())  # the epoch's metrics
    return time.perf_counter() - start


def run_flops(cfg: DictConfig, dm: PairMNISTDataModule) -> float:
    """FLOPs of one whole run: training steps (forward + backward) and validation forwards.

    Counts full batches (1000 pairs / 100 divide evenly in the protocol).
    """
    net = instantiate(cfg.model.net)()
    b = cfg.data.batch_size
    x, y, c = dm.train.input[:b], dm.train.target[:b], dm.train.classes[:b]
    with FlopCounterMode(display=False) as train_counter:
        logits, digits = net(x)
        pair_loss(logits, digits, y, c, cfg.model.aux_weight).backward()
    with FlopCounterMode(display=False) as val_counter, torch.no_grad():
        net(dm.val.input)
    steps = -(-len(dm.train.target) // b)
    return cfg.trainer.max_epochs * (steps * train_counter.get_total_flops() + val_counter.get_total_flops())


class _Tiny(pl.LightningModule):
    """A one-weight model: its steps cost nothing, so the Trainer's own cost is what remains."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Linear(1, 1)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        return self.w(batch[0]).square().mean()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.w(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=1e-3)


class _Logged(_Tiny):
    """_Tiny logging what PairModule logs once per epoch: 2 training metrics, 3 validation metrics and the step.

    ``standard``: through ``self.log_dict`` (what the project does); otherwise written
    straight to the loggers, which bypasses ``trainer.callback_metrics`` and the progress bar.
    """

    def __init__(self, standard: bool) -> None:
        super().__init__()
        self.standard = standard

    def _log(self, stage: str, n: int) -> None:
        values = {f"{stage}/metric{i}": torch.tensor(0.5) for i in range(n)}
        if self.standard:
            self.log_dict(values)
            self.log("step", float(self.current_epoch))
        else:
            for logger in self.loggers:
                logger.log_metrics({k: v.item() for k, v in values.items()}, step=self.current_epoch)

    def on_train_epoch_end(self) -> None:
        self._log("train", 2)

    def on_validation_epoch_end(self) -> None:
        self._log("val", 3)


def _tiny_loaders() -> tuple[DataLoader, DataLoader]:
    """10 training batches and 1 validation batch of random (1000, 1) data, as the study's epochs."""
    data = TensorDataset(torch.randn(1000, 1))
    return DataLoader(data, batch_size=100), DataLoader(data, batch_size=1000)


def _tiny_fit_seconds(module: pl.LightningModule, epochs: int, logger: pl.loggers.Logger | bool = False) -> float:
    """Seconds of a featureless Trainer fitting ``module`` for ``epochs`` x 10 steps + 1 validation batch."""
    train, val = _tiny_loaders()
    start = time.perf_counter()
    pl.Trainer(
        max_epochs=epochs,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    ).fit(module, train, val)
    return time.perf_counter() - start


def floor_seconds(epochs: int) -> tuple[float, float]:
    """(bare Trainer, hand loop) seconds for 25 epochs x 10 steps + 1 validation batch of _Tiny."""
    train, val = _tiny_loaders()

    def loop() -> float:
        model = _Tiny()
        optimizer = model.configure_optimizers()
        start = time.perf_counter()
        for _ in range(epochs):
            for batch in train:
                loss = model.training_step(batch, 0)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                for batch in val:
                    model.validation_step(batch, 0)
        return time.perf_counter() - start

    _tiny_fit_seconds(_Tiny(), epochs), loop()  # warm-up
    return median_seconds(lambda: _tiny_fit_seconds(_Tiny(), epochs), 5), median_seconds(loop, 5)


def logging_seconds(epochs: int, repeats: int) -> tuple[float, float]:
    """(``self.log_dict``, direct logger writes) seconds of a _Logged fit with a TensorBoard logger; sides alternate."""

    def fit(standard: bool) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return _tiny_fit_seconds(_Logged(standard), epochs, TensorBoardLogger(tmp, name="", version=""))

    fit(True), fit(False)  # warm-up
    times = [(fit(True), fit(False)) for _ in range(repeats)]
    standard, direct = (statistics.median(side) for side in zip(*times, strict=True))
    return standard, direct


def median_seconds(fn, repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def startup_seconds(repeats: int) -> tuple[float, float]:
    """Seconds to start Python and import run.py's modules (incl. the job's), and Python alone."""

    def timed(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - start

    imports = "import sys; sys.path.insert(0, 'src'); import run; import pairmnist.train"
    return median_seconds(lambda: timed(imports), repeats), median_seconds(lambda: timed("pass"), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["shallow", "twin", "siamese"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("overrides", nargs="*", help="extra config overrides for both sides, e.g. data.n_pairs=2000")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.repeats} repetitions per side\n")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for model in args.models:
            cfg = compose_cfg(model, 0, args.epochs, Path(tmp) / model, args.overrides)
            dm = instantiate(cfg.data, seed=cfg.seed, data_dir=cfg.paths.data_dir)
            dm.setup("fit")
            project_seconds(cfg)  # warm-up: first-call costs (kernels, imports) on neither side's clock
            bare_seconds(cfg, dm)
            times = [(project_seconds(cfg), bare_seconds(cfg, dm)) for _ in range(args.repeats)]  # interleaved
            project, bare = (statistics.median(side) for side in zip(*times, strict=True))
            gflop = run_flops(cfg, dm) / 1e9
            rows.append((model, project, bare, project / bare, gflop, gflop / project, gflop / bare))

        print("| model | project s | bare s | project/bare | GFLOP per run | GFLOP/s project | GFLOP/s bare |")
        print("|---|---|---|---|---|---|---|")
        for model, project, bare, ratio, gflop, gps_p, gps_b in rows:
            print(f"| {model} | {project:.2f} | {bare:.2f} | {ratio:.3f} | {gflop:.1f} | {gps_p:.1f} | {gps_b:.1f} |")

        cfg = compose_cfg("siamese", 0, args.epochs, Path(tmp) / "data", args.overrides)

        def mnist_from_cache() -> float:
            mnist_memo.cache_clear()
            start = time.perf_counter()
            load_mnist(cfg.data.source, cfg.paths.data_dir)
            return time.perf_counter() - start

        mnist = load_mnist(cfg.data.source, cfg.paths.data_dir)

        def pairs() -> float:
            start = time.perf_counter()
            make_pair_splits(cfg.data.n_pairs, cfg.data.n_val_pairs, 0, mnist)
            return time.perf_counter() - start

        floor_trainer, floor_loop = floor_seconds(args.epochs)
        logged, direct = logging_seconds(args.epochs, 3 * args.repeats)
        imports, python = startup_seconds(args.repeats)
        print(f"\nMNIST load from the cache (verified): {median_seconds(mnist_from_cache, args.repeats):.3f} s")
        print(f"pair generation (train + val + test): {median_seconds(pairs, args.repeats):.3f} s")
        print(f"process start-up, import of run.py's modules: {imports:.2f} s (bare Python: {python:.2f} s)")
        print(
            f"Lightning's floor (one-weight model, same steps, no features): Trainer {floor_trainer:.3f} s, "
            f"hand loop {floor_loop:.3f} s, difference {floor_trainer - floor_loop:.3f} s"
        )
        print(
            f"epoch metrics (5 an epoch, TensorBoard) through self.log_dict: {logged:.3f} s a run, written straight "
            f"to the logger: {direct:.3f} s, difference {logged - direct:.3f} s"
        )


if __name__ == "__main__":
    main()
