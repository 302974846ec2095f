"""Packed-weight linears for decode steps: same numbers as F.linear (to rounding), cached, rebuilt on change."""
import pytest
import torch
from torch import nn

from warmstart.generation import fast_linear as FL

pytestmark = pytest.mark.skipif(not FL._mkl_available(), reason="PyTorch built without MKL")


def test_packed_rows_match_and_other_shapes_fall_back():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 512), nn.Linear(512, 8))  # the second is too small to pack
    x4, x1 = torch.randn(4, 1, 512), torch.randn(1, 512)
    with torch.inference_mode():
        want4, want1 = model[0](x4), model[0](x1)
        with FL.packed_linears(model, model, rows=4):
            assert "forward" in model[0].__dict__ and "forward" not in model[1].__dict__
            got4, got1 = model[0](x4), model[0](x1)
        assert "forward" not in model[0].__dict__  # restored
    torch.testing.assert_close(got4, want4, rtol=1e-5, atol=1e-5)
    assert torch.equal(got1, want1)  # 1 row != 4: the ordinary kernel


def test_cache_reused_and_rebuilt_when_the_weight_changes():
    lin = nn.Linear(512, 512)
    owner = nn.Module()
    with torch.inference_mode():
        with FL.packed_linears(owner, lin, rows=2):
            pass
        first = owner._warmstart_packed_weights[id(lin)][1]
        with FL.packed_linears(owner, lin, rows=2):
            pass
        assert owner._warmstart_packed_weights[id(lin)][1] is first
    with torch.no_grad():
        lin.weight.mul_(2)  # an optimiser step, say
    with torch.inference_mode():
        with FL.packed_linears(owner, lin, rows=2):
            y = lin(torch.ones(2, 512))
    assert owner._warmstart_packed_weights[id(lin)][1] is not first
    torch.testing.assert_close(y, nn.functional.linear(torch.ones(2, 512), lin.weight, lin.bias), rtol=1e-5,
                               atol=1e-4)


def test_gradients_use_the_ordinary_kernel():
    lin = nn.Linear(512, 512)
    with FL.packed_linears(nn.Module(), lin, rows=3):
        x = torch.randn(3, 512, requires_grad=True)
        lin(x).sum().backward()
    assert x.grad is not None and lin.weight.grad is not None


@pytest.mark.skipif(not FL._onednn_bf16_available(), reason="no oneDNN bfloat16 kernels on this CPU")
def test_bfloat16_packed_equals_f_linear_for_any_row_count():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(512, 1024)).to(torch.bfloat16)
    with torch.inference_mode():
        xs = [torch.randn(4, 1, 512, dtype=torch.bfloat16), torch.randn(7, 512, dtype=torch.bfloat16)]
        want = [model(x) for x in xs]
        with FL.packed_linears(model, model, rows=4):
            assert "forward" in model[0].__dict__
            got = [model(x) for x in xs]
    for g, w in zip(got, want):
        assert g.dtype == torch.bfloat16 and torch.equal(g, w)


def test_bf16_weights_run_in_float32_on_a_cpu_without_bf16_hardware(monkeypatch, caplog):
    """An AVX2-only CPU emulates bfloat16 products (slower than float32): the step packs them as float32 instead."""
    from warmstart.hardware import CPU

    monkeypatch.setattr(FL, "cpu", lambda: CPU(model="an AVX2 CPU", flags=frozenset({"avx2", "fma"}), cores=2))
    monkeypatch.setattr(FL, "_warned_bf16", False)
    torch.manual_seed(0)
    lin = nn.Linear(512, 512).bfloat16()
    x = torch.randn(2, 1, 512).bfloat16()
    with torch.inference_mode(), caplog.at_level("WARNING", logger="warmstart"):
        with FL.packed_linears(lin, lin, rows=2):
            y = lin(x)
            y_prefill = lin(torch.randn(3, 512).bfloat16())  # other row counts: the ordinary bf16 kernel
        assert lin._warmstart_packed_weights[id(lin)][1].dtype == torch.float32
    want = nn.functional.linear(x.float(), lin.weight.float(), lin.bias.float())
    assert y.dtype == torch.bfloat16 and y_prefill.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), want, rtol=1e-2, atol=1e-2)
    assert "no bfloat16 hardware" in caplog.text and "an AVX2 CPU" in caplog.text
