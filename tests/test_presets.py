"""The presets of conf/hparams_search/ and conf/experiment/ with the models they are meant for, and not."""

from __future__ import annotations

import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir

from pairmnist.jobs.config import ConfigError, check_preset_sweep

MEANT_FOR = {  # what each preset's `model` sweep says
    "hparams_search=shallow_grid": ["shallow"],
    "hparams_search=deep_grid": ["twin", "siamese"],
    "hparams_search=deep_optuna": ["siamese", "twin"],  # a search: the model is picked by model= (siamese by default)
    "hparams_search=plus_grid": ["siamese_plus"],
    "hparams_search=plus_grid2": ["siamese_plus"],
    "hparams_search=plus_grid3": ["siamese_plus"],
    "experiment=ablation": ["twin", "siamese"],
    "experiment=data_scaling": ["twin", "siamese"],
    "experiment=siamese_plus_ingredients": ["siamese_plus"],
}


def multirun_config(*overrides: str):
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def test_every_preset_is_listed():
    files = [
        f"{p.parent.name}={p.stem}" for group in ("hparams_search", "experiment") for p in (CONF / group).iterdir()
    ]
    assert sorted(files) == sorted(MEANT_FOR)


@pytest.mark.parametrize("preset, model", [(p, m) for p, models in MEANT_FOR.items() for m in models])
def test_each_preset_passes_the_check_with_its_model(preset, model):
    cfg = multirun_config(preset, f"model={model}")
    if "optuna" not in preset:  # a search would search over a swept model; a grid runs each
        assert cfg.hydra.sweeper.params.model.split(",") == MEANT_FOR[preset]
    check_preset_sweep(cfg)  # every job of the sweep has allowed values


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["hparams_search=plus_grid", "model=siamese"],
            "model=siamese: hparams_search=plus_grid is meant for model=siamese_plus",
        ),
        (
            ["hparams_search=deep_grid", "model=shallow"],
            "model=shallow: hparams_search=deep_grid is meant for model=twin or model=siamese",
        ),
        (  # a search's ranges are checked at both ends
            ["hparams_search=deep_optuna", "model=shallow"],
            r"model.aux_weight=0.9: allowed: 0 .* \(swept by hparams_search=deep_optuna with model=shallow\)",
        ),
        (
            ["experiment=ablation", "model=shallow"],
            "model=shallow: experiment=ablation is meant for model=twin or model=siamese",
        ),
        (
            ["hparams_search=deep_grid", "model=twin", "model.head=digits"],
            r"model.aux_weight=0: allowed: 1 with model.head=digits .* \(swept by hparams_search=deep_grid",
        ),
        (  # a preset meant for siamese that sweeps a key of siamese_plus
            ["hparams_search=plus_grid2", "model=siamese", "hydra.sweeper.params.model=siamese"],
            r"^model.width: no such key \(swept by hparams_search=plus_grid2 with model=siamese\)$",
        ),
    ],
)
def test_a_preset_with_another_model_or_bad_values_is_a_one_line_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        check_preset_sweep(multirun_config(*overrides))
    assert "\n" not in str(info.value)


def test_keys_set_on_the_command_line_replace_the_presets():
    check_preset_sweep(
        multirun_config("hparams_search=deep_grid", "model=twin", "model.head=digits", "model.aux_weight=1")
    )
    check_preset_sweep(multirun_config("hparams_search=plus_grid2"))  # the preset's own model: each job checks itself


def test_cli_wrong_model_stops_the_multirun_before_it_starts(run_cli, tmp_path):
    proc = run_cli("-m", "hparams_search=deep_grid", "model=shallow", f"hydra.sweep.dir={tmp_path}/sweep", check=False)
    assert proc.returncode == 1 and not (tmp_path / "sweep").exists()
    assert proc.stderr.strip().splitlines() == [
        "model=shallow: hparams_search=deep_grid is meant for model=twin or model=siamese"
    ]
