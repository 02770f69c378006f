"""Distillation: a teacher checkpoint run beside the student (TrainConfig.teacher_checkpoint)."""

import numpy as np
import pytest
import torch

from conftest import tiny_settings
from fixtures.datasets import write_line_set
from signattn_driver import checkpoint
from signattn_driver.model import SteeringNet
from signattn_driver.training.loop import (load_run_config, predict_segments, prepare_data, train,
                                           TrainingError)
from signattn_driver.training.teacher import Teacher

TINY = tiny_settings(dropout=0.0, sequence_length=8, block_s=2.0, guard_s=0.5, val_fraction=0.25,
                     num_workers=0, device='cpu', freeze_encoder=True)
SHIFT = 0.02       # the teacher's head bias minus the student's starting one


@pytest.fixture(scope='module')
def line_set(tmp_path_factory):
    return write_line_set(tmp_path_factory.mktemp('data') / 'lines')


@pytest.fixture(scope='module')
def start_and_teacher(tmp_path_factory):
    """Save a starting checkpoint and a teacher that steers the same plus a constant."""
    model_config, _ = load_run_config(None, TINY)
    torch.manual_seed(0)
    model = SteeringNet(model_config).eval()
    root = tmp_path_factory.mktemp('ckpt')
    start = checkpoint.save(root / 'start.pt', model)
    with torch.no_grad():
        model.head.bias += SHIFT
    teacher = checkpoint.save(root / 'teacher.pt', model)
    return model_config, start, teacher


def test_the_teacher_carries_its_state_across_windows_as_one_sequence_would():
    model_config, _ = load_run_config(None, TINY)
    torch.manual_seed(1)
    teacher = Teacher(SteeringNet(model_config))
    x = torch.rand(2, 12, 3, 80, 160)
    whole, _, _ = teacher.model(x)
    first = teacher.predict(x[:, :5], None, new_group=True)
    rest = teacher.predict(x[:, 5:], None, new_group=False)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole)
    again = teacher.predict(x[:, 5:], None, new_group=True)    # a new group: state from frame 0
    torch.testing.assert_close(again, teacher.model(x[:, 5:])[0])
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert not teacher.model.training


def test_distillation_pulls_the_student_towards_its_teacher(line_set, start_and_teacher, tmp_path):
    torch.set_num_threads(2)
    model_config, start, teacher = start_and_teacher
    settings = dict(TINY, lr=1e-3, max_steps=30, val_every=30, init_checkpoint=str(start))
    _, plain = load_run_config(None, settings)
    _, taught = load_run_config(None, dict(settings, teacher_checkpoint=str(teacher),
                                           distill_weight=20.0))
    preds = {}
    for name, config in (('plain', plain), ('taught', taught)):
        run = train(model_config, config, [line_set], tmp_path / name, progress=False)
        model, _ = checkpoint.load_model(run['last_checkpoint'])
        data = prepare_data([line_set], config)
        preds[name] = np.concatenate(predict_segments(model, data.index, data.val_segments,
                                                      config, torch.device('cpu'))[0])
    # the teacher steers SHIFT * output_scale more than the start, everywhere
    offset = SHIFT * model_config.output_scale
    moved = float(np.mean(preds['taught'] - preds['plain']))
    assert moved > 0.5 * offset, (moved, offset)


def test_a_resumed_run_with_a_teacher_equals_an_uninterrupted_one(
        line_set, start_and_teacher, tmp_path):
    torch.set_num_threads(2)
    model_config, start, teacher = start_and_teacher
    settings = dict(TINY, lr=1e-3, max_steps=7, val_every=100, init_checkpoint=str(start),
                    teacher_checkpoint=str(teacher), distill_weight=1.0, episode_windows=4)
    _, config = load_run_config(None, settings)
    whole = train(model_config, config, [line_set], tmp_path / 'whole', progress=False)
    _, first = load_run_config(None, dict(settings, max_steps=3))
    train(model_config, first, [line_set], tmp_path / 'split', progress=False)
    resumed = train(model_config, config, [line_set], tmp_path / 'split', resume=True,
                    progress=False)
    last = checkpoint.load(tmp_path / 'split' / 'last.pt').metadata['resume']
    assert last['teacher_h'] is not None
    a = checkpoint.load(whole['last_checkpoint']).state_dict
    b = checkpoint.load(resumed['last_checkpoint']).state_dict
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_teacher_needs_its_weight_and_the_student_s_inputs(
        line_set, start_and_teacher, tmp_path):
    model_config, _, teacher = start_and_teacher
    with pytest.raises(TrainingError, match='go together'):
        load_run_config(None, dict(TINY, teacher_checkpoint=str(teacher)))
    with pytest.raises(TrainingError, match='go together'):
        load_run_config(None, dict(TINY, distill_weight=1.0))
    command_config, _ = load_run_config(None, dict(TINY, num_commands=4))
    command_teacher = checkpoint.save(tmp_path / 'command.pt', SteeringNet(command_config))
    _, config = load_run_config(None, dict(TINY, max_steps=1, distill_weight=1.0,
                                           teacher_checkpoint=str(command_teacher)))
    with pytest.raises(TrainingError, match='route commands'):
        train(model_config, config, [line_set], tmp_path / 'bad', progress=False)
    assert not (tmp_path / 'bad').exists()
    _, config = load_run_config(None, dict(TINY, max_steps=1, distill_weight=1.0,
                                           teacher_checkpoint=str(tmp_path / 'missing.pt')))
    with pytest.raises(TrainingError, match='teacher_checkpoint'):
        train(model_config, config, [line_set], tmp_path / 'bad', progress=False)
