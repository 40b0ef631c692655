"""The presets of conf/hparams_search/ and conf/experiment/: every job checked before a sweep starts, with the
models they are for and with others."""

from __future__ import annotations

import pytest
from conftest import CONF, TINY
from hydra import compose, initialize_config_dir

from pairmnist.jobs.hydra_callbacks import CheckJobs, job_overrides

MEANT_FOR = {  # what each preset's `model` sweep says
    "hparams_search=shallow_grid": ["shallow"],
    "hparams_search=deep_grid": ["twin", "siamese"],
    "hparams_search=deep_optuna": ["siamese"],  # a search: the model is picked by model= (siamese by default)
    "hparams_search=plus_grid": ["siamese_plus"],
    "hparams_search=plus_grid2": ["siamese_plus"],
    "hparams_search=plus_grid3": ["siamese_plus"],
    "hparams_search=plus_grid4": ["siamese_plus"],
    "experiment=ablation": ["twin", "siamese"],
    "experiment=data_scaling": ["twin", "siamese"],
    "experiment=siamese_plus_ingredients": ["siamese_plus"],
}


def check_sweep(data_dir, *overrides: str) -> None:
    """The check a multirun of ``overrides`` runs before it starts (SystemExit with its line on stderr if refused)."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        config = compose("config", overrides=[*overrides, f"paths.data_dir={data_dir}"], return_hydra_config=True)
        CheckJobs().on_multirun_start(config)


def test_every_preset_is_listed_and_sweeps_its_models():
    files = [
        f"{p.parent.name}={p.stem}" for group in ("hparams_search", "experiment") for p in (CONF / group).iterdir()
    ]
    assert sorted(files) == sorted(MEANT_FOR)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        for preset, models in MEANT_FOR.items():
            config = compose("config", overrides=[preset], return_hydra_config=True)
            swept = {o.removeprefix("model=") for job in job_overrides(config) for o in job if o.startswith("model=")}
            assert sorted(swept) == sorted(models) or ("optuna" in preset and not swept)  # a search: model= picks


@pytest.mark.parametrize("preset", MEANT_FOR)
def test_every_job_of_each_preset_passes_the_check(data_dir, preset):
    check_sweep(data_dir, preset)  # every combination of its sweeps, composed and instantiated


@pytest.mark.parametrize(
    "overrides, message",
    [
        (  # a model without digit outputs: the swept aux_weight 0.5 is refused, and how to replace it is said
            ["hparams_search=deep_grid", "model=shallow"],
            "model.aux_weight=0.5: allowed: 0 (this net has no digit outputs) (swept by hparams_search=deep_grid; "
            "a value set on the command line replaces the preset's)",
        ),
        (  # a search's ranges are checked at both ends
            ["hparams_search=deep_optuna", "model=shallow"],
            "model.aux_weight=0.9: allowed: 0 (this net has no digit outputs) (swept by hparams_search=deep_optuna;",
        ),
        (  # a key the model does not have
            ["hparams_search=plus_grid2", "model=siamese"],
            "ConfigCompositionException: Could not override 'model.net.branch.width'.",
        ),
    ],
)
def test_a_preset_with_a_model_it_cannot_run_is_one_line_naming_the_key(data_dir, capsys, overrides, message):
    with pytest.raises(SystemExit) as info:
        check_sweep(data_dir, *TINY, *overrides)
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and line.startswith(message)


def test_a_preset_runs_another_model_with_its_keys_and_the_command_line_replaces_its_values(data_dir):
    check_sweep(data_dir, *TINY, "hparams_search=plus_grid3", "model=siamese")  # siamese has its four keys
    check_sweep(data_dir, *TINY, "hparams_search=deep_grid", "model=shallow", "model.aux_weight=0")


def test_cli_a_model_the_preset_cannot_run_stops_the_multirun_before_it_starts(run_cli, tmp_path):
    proc = run_cli("-m", "hparams_search=deep_grid", "model=shallow", f"hydra.sweep.dir={tmp_path}/sweep", check=False)
    assert proc.returncode == 1 and not (tmp_path / "sweep").exists()
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("model.aux_weight=0.5: allowed: 0") and "hparams_search=deep_grid" in line
