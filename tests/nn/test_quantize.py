"""int8 weight-only quantization (warmstart.nn.quantize): the layer against its dequantized float twin, quantize()
on a tiny bert2bert / BertLMHeadModel / GPT2LMHeadModel (generation, logits, save -> reload -> re-quantize, tied
embeddings), the errors; and bfloat16 weights (generate, save, reload)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import warmstart as W
from warmstart.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel
from warmstart.nn.quantize import KERNEL_MAX_ROWS, Int8Linear, quantize_weight

# in_features 32 and 48: multiples of 16, as the int8 kernel needs, so every decoder linear is quantized.
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
            initializer_range=0.2)
# The products see inputs rounded to bfloat16 (the kernel's input type): results agree with the float32 twin to
# bfloat16's precision (8 bits), not float32's.
REL = 2e-2


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bert2bert():
    config = EncoderDecoderConfig.from_encoder_decoder_configs(W.BertConfig(**TINY), W.BertConfig(**TINY))
    config.decoder_start_token_id, config.pad_token_id = 3, 0
    return EncoderDecoderModel(config).eval()


def _bert_lm():
    return W.BertLMHeadModel(W.BertConfig(**TINY, is_decoder=True)).eval()


def _gpt2():
    return W.GPT2LMHeadModel(W.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                             bos_token_id=98, eos_token_id=98)).eval()


def _ids(seed=1):
    return torch.randint(4, 99, (2, 6), generator=torch.Generator().manual_seed(seed))


def _rel(a, b):
    a, b = a.detach().float(), b.detach().float()
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("rows", [1, KERNEL_MAX_ROWS + 5])  # the int8 kernel, and the dequantized GEMM
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_int8_linear_matches_its_dequantized_twin(rows, dtype):
    lin = nn.Linear(64, 40).to(dtype)
    q = Int8Linear.from_linear(lin)
    twin = q.dequantize()
    assert twin.weight.dtype == dtype and torch.equal(twin.bias, lin.bias)
    assert _rel(twin.weight, lin.weight) < 1 / 127  # per-row rounding error at most half a step
    x = torch.randn(rows, 3, 64, dtype=dtype)[:, 1]  # a strided view, as a decode step's last position is
    with torch.inference_mode():
        y = q(x)
        assert y.shape == (rows, 40) and y.dtype == dtype
        assert _rel(y, F.linear(x.float(), twin.weight.float(), twin.bias.float())) < REL
        assert q(x[None]).shape == (1, rows, 40)
    scales = q.scales.clone()
    q.to(torch.bfloat16 if dtype == torch.float32 else torch.float32)  # the output dtype moves, the scales do not
    assert q.scales.dtype == torch.float32 and torch.equal(q.scales, scales)


def test_quantize_weight_round_trips_and_zero_rows():
    w = torch.randn(8, 32)
    w[3] = 0
    q, s = quantize_weight(w)
    assert q.dtype == torch.int8 and q.abs().max() == 127 and not q[3].any()
    q2, s2 = quantize_weight(q.float() * s[:, None])  # what save_pretrained writes, quantized again
    assert torch.equal(q2, q) and torch.allclose(s2, s, rtol=1e-6)


@pytest.mark.parametrize("build", [_bert2bert, _bert_lm, _gpt2], ids=["bert2bert", "bert_lm", "gpt2"])
def test_quantized_model_generates_like_its_dequantized_reload(build, tmp_path):
    model = build()
    lm = model.get_decoder() if model.config.is_encoder_decoder else model
    table = lm.get_input_embeddings().weight.detach().clone()
    assert model.quantize("int8") is model and model.quantization_mode == "int8"
    linears = [m for m in lm.modules() if isinstance(m, (nn.Linear, Int8Linear))]
    assert linears and all(isinstance(m, Int8Linear) for m in linears)
    head = lm.get_output_embeddings()
    assert isinstance(head, Int8Linear) and head.shared_weight  # tied: the table stays float, untouched
    assert torch.equal(lm.get_input_embeddings().weight, table)
    assert torch.equal(head.weight_int8, quantize_weight(table)[0])
    if model.config.is_encoder_decoder:
        assert all(type(m) is not Int8Linear for m in model.encoder.modules())

    model.save_pretrained(tmp_path / "saved")  # float weights (scales * int8) under the usual names
    reloaded = type(model).from_pretrained(tmp_path / "saved")
    assert reloaded.quantization_mode is None and reloaded.dtype == torch.float32
    assert not any(isinstance(m, Int8Linear) for m in reloaded.modules())
    ids = _ids()
    kwargs = dict(input_ids=ids, max_new_tokens=6, do_sample=False)
    with torch.inference_mode():
        if model.config.is_encoder_decoder:
            inputs = dict(input_ids=ids, decoder_input_ids=torch.full((2, 3), 3))
        else:
            inputs = dict(input_ids=ids)
        assert _rel(model(**inputs).logits, reloaded(**inputs).logits) < REL
        assert torch.equal(model.generate(**kwargs), reloaded.generate(**kwargs))

    reloaded.quantize("int8")
    ours, again = dict(model.named_buffers()), dict(reloaded.named_buffers())
    for name, buf in ours.items():
        if buf.dtype == torch.int8:
            assert torch.equal(buf, again[name]), name
        elif name.endswith("scales"):
            assert torch.allclose(buf, again[name], rtol=1e-6), name


def test_a_layer_the_kernel_cannot_take_stays_float():
    model = W.BertLMHeadModel(W.BertConfig(**{**TINY, "intermediate_size": 37}, is_decoder=True)).eval()
    with pytest.warns(UserWarning, match=r"stay float \(in_features \[37\]"):
        model.quantize("int8")
    kinds = {type(m).__name__ for m in model.modules() if isinstance(m, (nn.Linear, Int8Linear))}
    assert kinds == {"Int8Linear", "Linear"}
    assert model.generate(input_ids=_ids(), max_new_tokens=3).shape == (2, 9)


def test_errors_name_the_value():
    model = _bert_lm()
    with pytest.raises(ValueError, match="'int4'"):
        model.quantize("int4")
    model.quantize("int8")
    with pytest.raises(ValueError, match="already quantized"):
        model.quantize("int8")
    assert not any(p.requires_grad for p in model.parameters())
    model.train()
    with pytest.raises(ValueError, match=r"training mode .* inference only"):
        model(input_ids=_ids())
    model.eval()
    head = model.get_output_embeddings()
    with pytest.raises(ValueError, match="requires grad"):
        head(torch.randn(1, 32, requires_grad=True))
    with pytest.raises(ValueError, match="no float weight"):
        model.tie_weights()
    with pytest.raises(ValueError, match="BertModel does not decode"):
        W.BertModel(W.BertConfig(**TINY)).quantize("int8")
    with pytest.raises(ValueError, match="BertForMaskedLM does not decode"):
        W.BertForMaskedLM(W.BertConfig(**TINY)).quantize("int8")


def test_bfloat16_weights_generate_save_and_reload(tmp_path):
    _bert2bert().save_pretrained(tmp_path / "f32")
    model = EncoderDecoderModel.from_pretrained(tmp_path / "f32", torch_dtype=torch.bfloat16)  # v4's spelling
    assert model.dtype == torch.bfloat16
    out = model.generate(input_ids=_ids(), max_new_tokens=5, do_sample=False)
    model.save_pretrained(tmp_path / "bf16")
    again = EncoderDecoderModel.from_pretrained(tmp_path / "bf16", dtype="auto")  # the saved dtype
    assert again.dtype == torch.bfloat16 and torch.equal(again.generate(input_ids=_ids(), max_new_tokens=5), out)
    again.quantize("int8")  # int8 decoder linears over bfloat16 activations
    assert again.generate(input_ids=_ids(), max_new_tokens=5).shape == out.shape
