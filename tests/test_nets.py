"""Net shapes, weight sharing and parameter counts."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from pairmnist.models.heads import make_head
from pairmnist.models.nets import DigitConvNet, DigitConvNetPlus, PairNet, Shallow, shifted, tta_offsets

Siamese = partial(PairNet, share_weights=True)
Twin = partial(PairNet, share_weights=False)


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
    (branch,) = net.branches
    branch.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape))
    x = torch.randn(4, 2, 14, 14)
    _, digits = net(x)
    assert calls == [torch.Size([8, 1, 14, 14])]
    assert torch.allclose(digits[:, 1], branch(x[:, 1:2]), atol=1e-6)  # channel order kept


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


class UserBranch(nn.Module):
    """A digit net the project has never seen: (B, 1, 14, 14) -> (B, 10)."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(196, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.layers(x)


class Scaled(nn.Module):
    """A digit net with a bare parameter and no ``reset_parameters()``."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(196, 10))

    def forward(self, x):
        return x.flatten(1) @ self.weight


@pytest.mark.parametrize("branch_cls", [UserBranch, DigitConvNetPlus, Scaled])
def test_any_branch_unshared_is_built_twice_independently_initialised(branch_cls):
    torch.manual_seed(0)
    shared, unshared = PairNet(branch_cls, share_weights=True), PairNet(branch_cls, share_weights=False)
    assert len(shared.branches) == 1 and len(unshared.branches) == 2
    assert n_params(unshared) - n_params(shared) == n_params(branch_cls())
    first, second = (dict(b.named_parameters()) for b in unshared.branches)
    assert first.keys() == second.keys() and not any(
        torch.equal(first[k], second[k]) for k in first if first[k].dim() > 1
    )
    assert all(a.data_ptr() != b.data_ptr() for a, b in zip(first.values(), second.values(), strict=True))
    x = torch.randn(3, 2, 14, 14)
    unshared.eval()
    _, digits = unshared(x)
    assert torch.allclose(digits[:, 1], unshared.branches[1](x[:, 1:]), atol=1e-6)


def same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))


def test_weights_are_drawn_in_the_original_reports_order():
    # The report's twin net, bit for bit: the head, then two DigitConvNets, in that order of random draws.
    torch.manual_seed(3)
    twin = Twin()
    torch.manual_seed(3)
    head, first, second = make_head("learned", 100), DigitConvNet(), DigitConvNet()
    assert same(twin.head, head) and same(twin.branches[0], first) and same(twin.branches[1], second)
    # A given branch is built before the head (where Hydra built it), the second one after it.
    torch.manual_seed(3)
    plus = PairNet(DigitConvNetPlus, share_weights=False)
    torch.manual_seed(3)
    first, head, second = DigitConvNetPlus(), make_head("learned", 100), DigitConvNetPlus()
    assert same(plus.branches[0], first) and same(plus.head, head) and same(plus.branches[1], second)
