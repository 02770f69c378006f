"""Checkpoints round-trip exactly; every bad file raises CheckpointError naming the problem."""

import pickle
import warnings

import numpy as np
import pytest
import torch

from conftest import tiny_config
from signattn_driver import checkpoint
from signattn_driver.checkpoint import CheckpointError
from signattn_driver.model import SteeringNet


def test_round_trip_gives_identical_outputs(tmp_path, tiny_model):
    path = checkpoint.save(tmp_path / 'm.pt', tiny_model, metrics={'mae_deg': 4.2})
    model, ckpt = checkpoint.load_model(path)
    x = torch.rand(1, 3, 3, 80, 160)
    with torch.no_grad():
        assert torch.equal(tiny_model(x)[0], model(x)[0])
    assert ckpt.config == tiny_model.config
    assert ckpt.metadata['metrics'] == {'mae_deg': 4.2}
    assert ckpt.metadata['preprocessing']['version'] == 1
    assert len(ckpt.file_sha256) == 64


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        checkpoint.load(tmp_path / 'absent.pt')


def test_truncated_file(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    cut = tmp_path / 'cut.pt'
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        checkpoint.load(cut)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / 'evil.pt'
    torch.save({'format': 'signattn_driver', 'format_version': 1, 'payload': SteeringNet},
               path)
    with pytest.raises(CheckpointError, match='weights_only'):
        checkpoint.load(path)


def test_modified_weights_detected(tmp_path, tiny_checkpoint):
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload['state_dict']['head.bias'] += 1.0
    torch.save(payload, tmp_path / 'edited.pt')
    with pytest.raises(CheckpointError, match='modified'):
        checkpoint.load(tmp_path / 'edited.pt')


def test_weights_not_matching_config(tmp_path, tiny_model):
    path = checkpoint.save(tmp_path / 'm.pt', tiny_model)
    payload = torch.load(path, weights_only=True)
    payload['model_config']['lstm_hidden'] = 32
    torch.save(payload, tmp_path / 'mismatch.pt')
    with pytest.raises(CheckpointError, match='do not fit'):
        checkpoint.load(tmp_path / 'mismatch.pt').build_model()


def test_foreign_and_future_files(tmp_path, tiny_checkpoint):
    torch.save({'state_dict': {}}, tmp_path / 'foreign.pt')
    with pytest.raises(CheckpointError, match='not a signattn_driver'):
        checkpoint.load(tmp_path / 'foreign.pt')
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload['format_version'] = 99
    torch.save(payload, tmp_path / 'future.pt')
    with pytest.raises(CheckpointError, match='version 99'):
        checkpoint.load(tmp_path / 'future.pt')
    payload['format_version'] = 1
    payload['preprocessing'] = {'version': 0}
    torch.save(payload, tmp_path / 'oldprep.pt')
    with pytest.raises(CheckpointError, match='preprocessing'):
        checkpoint.load(tmp_path / 'oldprep.pt')


def test_not_a_zip(tmp_path):
    (tmp_path / 'text.pt').write_text('hello')
    with pytest.raises(CheckpointError):
        checkpoint.load(tmp_path / 'text.pt')


def test_reserved_metadata_rejected(tmp_path):
    with pytest.raises(ValueError):
        checkpoint.save(tmp_path / 'x.pt', SteeringNet(tiny_config()), state_dict={})


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    path = tmp_path / 'random.pt'
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match=r'not a checkpoint \(not a torch zip/pickle'):
        checkpoint.load(path)


def test_plain_pickle_is_refused_without_a_torch_warning(tmp_path, capfd):
    path = tmp_path / 'plain.pt'
    with open(path, 'wb') as f:
        pickle.dump({'format': 'signattn_driver', 'format_version': 1, 'state_dict': {}}, f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with pytest.raises(CheckpointError, match='a plain pickle file, not a torch zip'):
            checkpoint.load(path)
    assert not caught, [str(w.message) for w in caught]
    assert capfd.readouterr().err == ''


def test_a_checkpoint_from_before_the_position_bias_option_loads_unchanged(tmp_path, tiny_model):
    path = checkpoint.save(tmp_path / 'm.pt', tiny_model)
    payload = torch.load(path, weights_only=True)
    del payload['model_config']['attention_position_bias']    # as written before the option
    torch.save(payload, tmp_path / 'old.pt')
    model, ckpt = checkpoint.load_model(tmp_path / 'old.pt')
    assert not ckpt.config.attention_position_bias
    assert 'attention.position_bias' not in model.state_dict()
    x = torch.rand(1, 3, 3, 80, 160)
    with torch.no_grad():
        assert torch.equal(tiny_model(x)[1], model(x)[1])


def test_init_weights_without_the_position_bias_start_it_at_zero(tmp_path, tiny_model):
    """A fine-tune that adds the per-cell bias starts out as the checkpoint's model."""
    ckpt = checkpoint.load(checkpoint.save(tmp_path / 'm.pt', tiny_model))
    model = SteeringNet(tiny_config(attention_position_bias=True)).eval()
    model.load_state_dict(checkpoint.initial_weights(ckpt, model))
    assert torch.equal(model.attention.position_bias, torch.zeros(200))
    x = torch.rand(1, 3, 3, 80, 160)
    with torch.no_grad():
        u0, att0, _ = tiny_model(x)
        u1, att1, _ = model(x)
    assert torch.equal(u0, u1) and torch.equal(att0, att1)


def test_init_weights_without_the_attention_gain_start_it_at_one(tmp_path, tiny_model):
    """A fine-tune that adds the attention gain starts out as the checkpoint's model.

    A trained gain round-trips through a checkpoint.
    """
    ckpt = checkpoint.load(checkpoint.save(tmp_path / 'm.pt', tiny_model))
    model = SteeringNet(tiny_config(attention_gain=True)).eval()
    model.load_state_dict(checkpoint.initial_weights(ckpt, model))
    x = torch.rand(1, 3, 3, 80, 160)
    with torch.no_grad():
        u0, att0, _ = tiny_model(x)
        u1, att1, _ = model(x)
        assert torch.equal(u0, u1) and torch.equal(att0, att1)
        model.alpha_gain.state.bias.fill_(0.7)
        u2 = model(x)[0]
        loaded, saved = checkpoint.load_model(checkpoint.save(tmp_path / 'g.pt', model))
        assert saved.config.attention_gain
        assert torch.equal(loaded(x)[0], u2)


def test_a_learned_score_checkpoint_starts_a_head_score_fine_tune(tmp_path, tiny_model):
    """The head score adds no weights: a checkpoint of either kind loads into the other."""
    path = checkpoint.save(tmp_path / 'm.pt', tiny_model)
    payload = torch.load(path, weights_only=True)
    del payload['model_config']['attention_score']    # as written before the option
    torch.save(payload, tmp_path / 'old.pt')
    assert checkpoint.load(tmp_path / 'old.pt').config.attention_score == 'learned'
    model = SteeringNet(tiny_config(attention_score='head')).eval()
    model.load_state_dict(checkpoint.initial_weights(checkpoint.load(path), model))
    x = torch.rand(1, 3, 3, 80, 160)
    with torch.no_grad():
        _, att0, _ = tiny_model(x)
        _, att1, _ = model(x)
    assert not torch.allclose(att0, att1)
    loaded, ckpt = checkpoint.load_model(checkpoint.save(tmp_path / 'head.pt', model))
    assert ckpt.config.attention_score == 'head'
    with torch.no_grad():
        assert torch.equal(loaded(x)[1], att1)


def test_a_trained_position_bias_round_trips(tmp_path):
    torch.manual_seed(0)
    model = SteeringNet(tiny_config(attention_position_bias=True)).eval()
    torch.nn.init.normal_(model.attention.position_bias)
    loaded, ckpt = checkpoint.load_model(checkpoint.save(tmp_path / 'm.pt', model))
    assert ckpt.config.attention_position_bias
    assert torch.equal(loaded.attention.position_bias, model.attention.position_bias)
    # and its weights do not fit a model without the bias: refused, not silently dropped
    payload = torch.load(tmp_path / 'm.pt', weights_only=True)
    payload['model_config']['attention_position_bias'] = False
    torch.save(payload, tmp_path / 'mismatch.pt')
    with pytest.raises(CheckpointError, match='do not fit'):
        checkpoint.load_model(tmp_path / 'mismatch.pt')
