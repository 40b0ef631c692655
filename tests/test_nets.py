"""Net shapes, weight sharing and parameter counts."""

from __future__ import annotations

import pytest
import torch

from pairmnist.models.nets import DigitConvNet, Shallow, Siamese, Twin, shifted, tta_offsets


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("net_cls", [Shallow, Twin, Siamese])
def test_output_shapes(net_cls):
    logits, digits = net_cls()(torch.randn(5, 2, 14, 14))
    assert logits.shape == (5, 2) and logits.dtype == torch.float32
    if net_cls is Shallow:
        assert digits is None
    else:
        assert digits.shape == (5, 2, 10)


def test_digit_convnet_has_the_reports_layers():
    net = DigitConvNet()
    assert net(torch.randn(3, 1, 14, 14)).shape == (3, 10)
    assert n_params(net) == 22_634  # conv 320 + 9,248 + 8,256, fc 4,160 + 650


def test_siamese_shares_one_convnet_twin_has_two():
    head = 20 * 100 + 100 + 100 * 2 + 2
    assert n_params(Siamese(nb_hidden=100)) == n_params(DigitConvNet()) + head
    assert n_params(Twin(nb_hidden=100)) == 2 * n_params(DigitConvNet()) + head
    assert n_params(Shallow(nb_hidden=500)) == 392 * 500 + 500 + 500 * 2 + 2


def test_siamese_calls_its_branch_once_on_both_digits():
    net, calls = Siamese(), []
    net.branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape))
    x = torch.randn(4, 2, 14, 14)
    _, digits = net(x)
    assert calls == [torch.Size([8, 1, 14, 14])]
    assert torch.allclose(digits[:, 1], net.branch(x[:, 1:2]), atol=1e-6)  # channel order kept


def test_twin_branches_see_their_own_channel():
    net = Twin()
    x = torch.randn(4, 2, 14, 14)
    _, digits = net(x)
    assert torch.allclose(digits[:, 0], net.branches[0](x[:, :1]))
    assert torch.allclose(digits[:, 1], net.branches[1](x[:, 1:]))


def test_shifted_copies_and_test_time_augmentation_only_in_evaluation():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 2] = 1.0
    assert shifted(x, 1, -1)[0, 0].nonzero().tolist() == [[2, 1]]  # one row down, one column left
    assert tta_offsets(0) == [(0, 0)] and len(tta_offsets(2)) == 9
    torch.manual_seed(0)
    plain, tta = Siamese(), Siamese(tta_shift=1)
    tta.load_state_dict(plain.state_dict())
    pairs = torch.randn(3, 2, 14, 14)
    tta.train()
    plain.train()
    assert torch.equal(tta(pairs)[1], plain(pairs)[1])  # training sees the input as it is
    tta.eval()
    plain.eval()
    expected = torch.stack([plain(shifted(pairs, dy, dx))[1] for dy, dx in tta_offsets(1)]).mean(0)
    assert torch.allclose(tta(pairs)[1], expected, atol=1e-5)
