"""Training: learning a toy task, exact resume, Predictor agreement, early clear errors."""

import csv
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import tiny_settings
from fixtures.datasets import write_line_set
from signattn_driver import checkpoint
from signattn_driver.cli import main as cli_main
from signattn_driver.paths import config_path
from signattn_driver.model import ModelConfig
from signattn_driver.predictor import Predictor
from signattn_driver.preprocessing import hsv_u8_to_input
from signattn_driver.training.loop import (load_run_config, predict_segments, prepare_data, train,
                                           TrainConfig, TrainingError)
from signattn_driver.vehicle import load_vehicle

# config/train_tiny.yaml, fitted to the short synthetic drives below (blocks of 2 s) and to a
# fast in-process test (no dropout, no worker processes).
TINY = tiny_settings(dropout=0.0, sequence_length=8, block_s=2.0, guard_s=0.5, val_fraction=0.25,
                     num_workers=0, device='cpu')


@pytest.fixture(scope='module')
def line_set(tmp_path_factory):
    return write_line_set(tmp_path_factory.mktemp('data') / 'lines')


@pytest.fixture(scope='module')
def trained(line_set, tmp_path_factory):
    torch.set_num_threads(2)
    model_config, config = load_run_config(None, dict(TINY, lr=1e-3, max_steps=80,
                                                      val_every=40))
    out = tmp_path_factory.mktemp('runs') / 'lines'
    result = train(model_config, config, [line_set], out, progress=False)
    return result, model_config, config


def test_loss_falls_well_below_the_constant_predictor(trained, line_set):
    result, _, config = trained
    data = prepare_data([line_set], config)
    u_val = np.concatenate([data.index.labels(s)['inverse_radius_per_m']
                            for s in data.val_segments])
    constant_mae = np.abs(u_val - np.median(u_val)).mean()
    assert result['steps'] == 80
    assert result['metrics']['frames'] == len(u_val)
    assert result['metrics']['mae_u_per_m'] < 0.35 * constant_mae
    assert result['metrics']['mae_steering_deg'] > 0
    with open(result['run_dir'] / 'metrics.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    train_rows = [r for r in rows if r['phase'] == 'train']
    val_rows = [r for r in rows if r['phase'] == 'val']
    assert len(val_rows) == 2 and len(train_rows) == 8
    # honest columns: the training rows carry the loss and its L1 term, never a validation MAE
    assert all(r['mae_u_per_m'] == '' and float(r['l1_u_per_m']) > 0 for r in train_rows)
    assert all(r['l1_u_per_m'] == '' and float(r['mae_u_per_m']) > 0 for r in val_rows)
    assert float(val_rows[-1]['mae_u_per_m']) == pytest.approx(result['metrics']['mae_u_per_m'])


def test_run_folder_holds_config_and_checkpoints_the_node_can_load(trained):
    result, model_config, config = trained
    again = load_run_config(result['run_dir'] / 'config.yaml', {})
    assert again == (model_config, config)
    best = checkpoint.load(result['best_checkpoint'])
    assert best.config == model_config
    assert best.metadata['vehicle'] == load_vehicle('mkz').to_dict()
    assert best.metadata['train_config'] == config.to_dict()
    assert best.metadata['smoothing_alpha'] == 1.0     # what `signattn demo` reads back
    assert set(best.metadata['metrics']) >= {'mae_u_per_m', 'mae_steering_deg'}
    assert 'optimizer' not in best.metadata
    last = checkpoint.load(result['last_checkpoint'])
    assert last.metadata['step'] == 80 and 'optimizer' in last.metadata
    assert last.metadata['metrics'] == result['metrics']


def test_predictor_reproduces_the_validation_numbers(trained, line_set):
    result, _, config = trained
    data = prepare_data([line_set], config)
    predictor = Predictor(result['last_checkpoint'], device='cpu')
    model = predictor.model
    batched, _ = predict_segments(model, data.index, data.val_segments, config,
                                  torch.device('cpu'))
    errors = []
    for seg, expected in zip(data.val_segments, batched):
        window = data.index.window(seg, 0, len(seg))
        predictor.reset()
        u = np.array([float(predictor.step_input(hsv_u8_to_input(torch.from_numpy(f))[None])[0])
                      for f in window['frames']])
        np.testing.assert_allclose(u, expected, rtol=1e-4, atol=1e-6)
        errors.append(np.abs(u - window['inverse_radius_per_m']))
    mae = np.concatenate(errors).mean()
    assert mae == pytest.approx(result['metrics']['mae_u_per_m'], rel=1e-4)


def test_resumed_run_equals_an_uninterrupted_one(line_set, tmp_path):
    torch.set_num_threads(2)
    settings = dict(TINY, dropout=0.5, augment=True, flip=True, batch_size=2, max_steps=9,
                    val_every=100, attention='soft', entropy_weight=0.01)
    model_config, config = load_run_config(None, settings)
    whole = train(model_config, config, [line_set], tmp_path / 'whole', progress=False)
    _, first = load_run_config(None, dict(settings, max_steps=5, num_workers=1))
    train(model_config, first, [line_set], tmp_path / 'split', progress=False)
    resumed = train(model_config, config, [line_set], tmp_path / 'split', resume=True,
                    progress=False)
    assert resumed['steps'] == whole['steps'] == 9
    a = checkpoint.load(whole['last_checkpoint'])
    b = checkpoint.load(resumed['last_checkpoint'])
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert resumed['metrics'] == whole['metrics']
    steps = [int(r.split(',')[0]) for r in
             (tmp_path / 'split' / 'metrics.csv').read_text().splitlines()[1:]]
    assert steps == sorted(steps)


def test_fine_tuning_starts_from_the_given_weights(trained, line_set, tmp_path):
    result, model_config, _ = trained
    start = checkpoint.load(result['best_checkpoint'])
    # zero steps of learning (lr tiny, one step) must keep the weights near the start point,
    # far closer than a fresh initialisation is
    _, config = load_run_config(None, dict(TINY, lr=1e-12, max_steps=1, val_every=1,
                                           init_checkpoint=str(result['best_checkpoint'])))
    tuned = train(model_config, config, [line_set], tmp_path / 'tuned', progress=False)
    got = checkpoint.load(tuned['last_checkpoint']).state_dict
    for k, v in start.state_dict.items():
        assert torch.allclose(got[k], v, atol=1e-6), k
    bad_model, bad = load_run_config(None, dict(TINY, max_steps=1, init_checkpoint=str(
        result['best_checkpoint']), lstm_hidden=TINY['lstm_hidden'] * 2))
    with pytest.raises(TrainingError, match='do not fit'):
        train(bad_model, bad, [line_set], tmp_path / 'bad', progress=False)


def test_frozen_encoder_keeps_its_weights_while_the_rest_learns(trained, line_set, tmp_path):
    result, model_config, _ = trained
    start = checkpoint.load(result['best_checkpoint']).state_dict
    _, config = load_run_config(None, dict(TINY, lr=1e-3, max_steps=5, val_every=5,
                                           freeze_encoder=True,
                                           init_checkpoint=str(result['best_checkpoint'])))
    tuned = train(model_config, config, [line_set], tmp_path / 'frozen', progress=False)
    got = checkpoint.load(tuned['last_checkpoint']).state_dict
    encoder = [k for k in start if k.startswith('encoder.')]
    assert encoder and all(torch.equal(got[k], start[k]) for k in encoder)
    moved = [k for k in start if not k.startswith('encoder.')
             and not torch.allclose(got[k], start[k], atol=1e-6)]
    assert {'head.weight', 'gate.weight'} <= set(moved)


def test_bad_configs_fail_clearly_before_any_work(tmp_path, line_set):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('lstm_hiden: 64\n')
    with pytest.raises(TrainingError, match="unknown config key.*'lstm_hiden'"):
        load_run_config(bad, {})
    for overrides, message in [({'val_split': 'random'}, 'val_split'),
                               ({'sequence_length': 0}, 'sequence_length'),
                               ({'batch_size': 2.5}, 'batch_size'),
                               ({'attention': 'hard'}, 'attention'),
                               ({'entropy_weight': 0.1}, 'soft')]:
        with pytest.raises(TrainingError, match=message):
            load_run_config(None, overrides)
    bad.write_text('- a list\n')
    with pytest.raises(TrainingError, match='mapping'):
        load_run_config(bad, {})
    # command-line flags override the file; unset flags (None) do not
    good = tmp_path / 'good.yaml'
    good.write_text(yaml.safe_dump({'lstm_hidden': 32, 'max_steps': 7, 'attention': 'soft'}))
    model_config, config = load_run_config(good, {'attention': 'none', 'max_steps': None})
    assert (model_config.attention, model_config.lstm_hidden, config.max_steps) == \
        ('none', 32, 7)
    assert TrainConfig().lr == 1e-4 and model_config.dropout == 0.5
    # the CLI reports the same as one line, exit status 2, and creates nothing
    rc = cli_main(['train', '--data', str(line_set), '--config', str(bad), '--out',
                   str(tmp_path / 'run')])
    assert rc == 2 and not (tmp_path / 'run').exists()


def test_unreadable_data_and_wrong_run_folders_fail_before_any_work(tmp_path, line_set,
                                                                    capsys):
    model_config, config = load_run_config(None, dict(TINY, max_steps=1))
    out = tmp_path / 'run'
    with pytest.raises(TrainingError, match='manifest'):
        train(model_config, config, [tmp_path / 'nowhere'], out, progress=False)
    broken = tmp_path / 'broken'
    shutil.copytree(line_set, broken)
    chunk = broken / 'drive1' / 'frames_00001.npy'
    chunk.write_bytes(chunk.read_bytes()[:1000])                 # truncated copy
    with pytest.raises(TrainingError, match='drive1'):
        train(model_config, config, [broken], out, progress=False)
    with pytest.raises(TrainingError, match='no training data'):
        train(model_config, config, [], out, progress=False)
    with pytest.raises(TrainingError, match='last.pt'):
        train(model_config, config, [line_set], out, resume=True, progress=False)
    _, camera = load_run_config(None, dict(TINY, camera='left'))
    with pytest.raises(TrainingError, match="camera 'left'"):
        train(model_config, camera, [line_set], out, progress=False)
    assert not out.exists()
    rc = cli_main(['train', '--data', str(broken), '--out', str(out), '--no-progress'])
    assert rc == 2 and 'drive1' in capsys.readouterr().err
    # a finished run (here through the CLI) is never overwritten, and resuming with another
    # model is refused
    tiny_yaml = tmp_path / 'tiny.yaml'
    tiny_yaml.write_text(yaml.safe_dump(dict(TINY, max_steps=1)))
    assert cli_main(['train', '--data', str(line_set), '--config', str(tiny_yaml), '--out',
                     str(out), '--no-progress']) == 0
    assert (out / 'best.pt').is_file() and 'best:' in capsys.readouterr().out
    with pytest.raises(TrainingError, match='--resume'):
        train(model_config, config, [line_set], out, progress=False)
    other, _ = load_run_config(None, dict(TINY, lstm_hidden=8))
    with pytest.raises(TrainingError, match='model config differs'):
        train(other, config, [line_set], out, resume=True, progress=False)


def test_shipped_configs_load():
    paper_model, paper = load_run_config(config_path('train_paper.yaml'), {})
    assert (paper_model.lstm_hidden, paper_model.dropout, paper.lr) == (1024, 0.5, 1e-4)
    tiny_model, tiny = load_run_config(config_path('train_tiny.yaml'), {'attention': 'soft'})
    assert tiny_model.attention == 'soft' and tiny_model.lstm_hidden < 1024
    # the shipped model's fine-tune recipe builds the shipped checkpoint's architecture
    tuned_model, tuned = load_run_config(config_path('train_finetune.yaml'), {})
    shipped = checkpoint.load(config_path('models', 'sim_mean_field.pt'))
    assert tuned_model == shipped.config and not tuned.amp


def test_the_route_default_is_its_faithful_recipe():
    """config/models/sim_route.pt is what config/train_route_faithful.yaml trains (stage 19)."""
    recipe_model, recipe = load_run_config(config_path('train_route_faithful.yaml'), {})
    shipped = checkpoint.load(config_path('models', 'sim_route.pt'))
    assert recipe_model == shipped.config
    assert shipped.config.attention_score == 'head' and shipped.config.num_commands == 4
    assert shipped.config.memory_input == 'uniform'
    trained = shipped.metadata['train_config']
    # every training setting of the recipe is the one the shipped weights were trained with
    # (init_checkpoint names the previous stage's file, which the recipe cannot know)
    recipe_settings = {k: v for k, v in recipe.to_dict().items() if k != 'init_checkpoint'}
    assert {k: trained[k] for k in recipe_settings} == recipe_settings
    assert shipped.metadata['route_commands']['roundabout_commands'] == 'per_exit'


def test_paper_config_is_the_dataclass_defaults_by_value():
    """One source for the paper settings: train_paper.yaml == ModelConfig(), TrainConfig()."""
    written = yaml.safe_load(config_path('train_paper.yaml').read_text())
    defaults = {**ModelConfig().to_dict(), **TrainConfig().to_dict()}
    assert {k: defaults[k] for k in written} == written
    assert load_run_config(config_path('train_paper.yaml'), {}) == (ModelConfig(), TrainConfig())


def test_sweep_without_config_trains_with_the_paper_config(monkeypatch, tmp_path):
    from signattn_driver.evaluation import sweeps
    from signattn_driver.training import loop
    seen = []

    def stop(model_config, train_config, *args, **kwargs):
        seen.append((model_config, train_config))
        raise TrainingError('stop here')
    monkeypatch.setattr(loop, 'train', stop)
    with pytest.raises(TrainingError, match='stop here'):
        sweeps.sweep('bits', [str(tmp_path)], tmp_path / 'sweep', values=[10])
    # sweeps always train in fp32 (amp off) so that Q, not bf16, is what is measured
    assert seen == [(ModelConfig(quant_bits=10), TrainConfig(amp=False))]
