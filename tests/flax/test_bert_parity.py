"""FlaxBert* against our PyTorch BERT (proven against transformers) on the same tiny weights, with padding."""
import jax
import numpy as np
import pytest
import torch

import warmstart as W
from warmstart.checkpoint.keymaps import KEYMAPS
from warmstart.flax.bert import (FlaxBertForMaskedLM, FlaxBertForQuestionAnswering, FlaxBertForSequenceClassification,
                                 FlaxBertForTokenClassification, FlaxBertModel)
from warmstart.checkpoint.flax_layout import to_flax_tree

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=3)
ATOL = 1e-5


def _ids():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 99, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    types = torch.zeros_like(ids)
    types[:, 4:] = 1
    return ids, mask, types


def _pair(pt_cls, fx_cls, **extra):
    torch.manual_seed(0)
    cfg = W.BertConfig(**{**TINY, **extra})
    pt = pt_cls(cfg).eval()
    backbone = pt if pt_cls is W.BertModel else pt.bert
    backbone.skip_padding = False  # compute padded rows too, as Flax does
    with torch.no_grad():
        for p in pt.parameters():  # non-trivial biases and norms
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape))
    state = {k: v.detach().numpy() for k, v in pt.state_dict().items()}
    theirs = KEYMAPS["bert"].to_theirs(state, model_has_prefix=pt_cls is not W.BertModel)
    fx = fx_cls(W.BertConfig(**{**TINY, **extra}))
    fx.params = to_flax_tree(theirs)
    return pt, fx


def _close(a, b, what):
    d = float(np.abs(np.asarray(a, np.float32) - b.detach().numpy()).max())
    assert d <= ATOL, f"{what}: max abs diff {d:.3g}"


@pytest.mark.parametrize("position", ["absolute", "relative_key", "relative_key_query"])
def test_bert_model(position):
    pt, fx = _pair(W.BertModel, FlaxBertModel, position_embedding_type=position)
    ids, mask, types = _ids()
    with torch.no_grad():
        a = pt(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True, output_attentions=True)
    b = fx(ids.numpy(), attention_mask=mask.numpy(), token_type_ids=types.numpy(), output_hidden_states=True,
           output_attentions=True)
    _close(b.last_hidden_state, a.last_hidden_state, "last_hidden_state")
    _close(b.pooler_output, a.pooler_output, "pooler")
    for i, (x, y) in enumerate(zip(b.hidden_states, a.hidden_states, strict=True)):
        _close(x, y, f"hidden {i}")
    for i, (x, y) in enumerate(zip(b.attentions, a.attentions, strict=True)):
        _close(x, y, f"attention {i}")


def test_heads_logits_and_losses():
    ids, mask, types = _ids()
    labels = ids.clone()
    labels[mask == 0] = -100
    cases = [(W.BertForMaskedLM, FlaxBertForMaskedLM, {"labels": labels}, "logits"),
             (W.BertForSequenceClassification, FlaxBertForSequenceClassification, {"labels": torch.tensor([2, 0])},
              "logits"),
             (W.BertForTokenClassification, FlaxBertForTokenClassification,
              {"labels": torch.where(mask == 1, ids % 3, -100)}, "logits"),
             (W.BertForQuestionAnswering, FlaxBertForQuestionAnswering,
              {"start_positions": torch.tensor([1, 20]), "end_positions": torch.tensor([3, 5])}, "start_logits")]
    for pt_cls, fx_cls, lab, field in cases:
        pt, fx = _pair(pt_cls, fx_cls, **({"num_labels": 2} if "start_positions" in lab else {}))
        with torch.no_grad():
            a = pt(ids, attention_mask=mask, token_type_ids=types, **lab)
        b = fx(ids.numpy(), attention_mask=mask.numpy(), token_type_ids=types.numpy(),
               **{k: v.numpy() for k, v in lab.items()})
        _close(getattr(b, field), getattr(a, field), f"{fx_cls.__name__} {field}")
        _close(b.loss, a.loss, f"{fx_cls.__name__} loss")


def test_gradients_match_autograd():
    pt, fx = _pair(W.BertForSequenceClassification, FlaxBertForSequenceClassification)
    ids, mask, types = _ids()
    y = torch.tensor([2, 0])
    pt(ids, attention_mask=mask, token_type_ids=types, labels=y).loss.backward()
    grads = jax.grad(lambda p: fx(ids.numpy(), attention_mask=mask.numpy(), token_type_ids=types.numpy(),
                                  labels=y.numpy(), params=p).loss)(fx.params)
    theirs = KEYMAPS["bert"].to_theirs({n: p.grad.numpy() for n, p in pt.named_parameters() if p.grad is not None},
                                       model_has_prefix=True)
    flat = to_flax_tree(theirs)
    for path, g in jax.tree_util.tree_leaves_with_path(flat):
        mine = grads
        for k in path:
            mine = mine[k.key]
        d = float(np.abs(np.asarray(mine) - g).max())
        assert d <= ATOL, (jax.tree_util.keystr(path), d)


def test_bad_inputs_are_named():
    _, fx = _pair(W.BertModel, FlaxBertModel)
    with pytest.raises(ValueError, match="contains 120"):
        fx(np.array([[1, 120]]))
    with pytest.raises(ValueError, match="contains -1"):
        fx(np.array([[1, -1]]))
    with pytest.raises(TypeError, match="integer"):
        fx(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="exceeds the position table"):
        fx(np.ones((1, 65), dtype=np.int32))
    with pytest.raises(ValueError, match=r"attention_mask shape \(1, 3\)"):
        fx(np.ones((1, 2), dtype=np.int32), attention_mask=np.ones((1, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="token_type_ids contains 2"):
        fx(np.ones((1, 2), dtype=np.int32), token_type_ids=np.array([[0, 2]]))
    with pytest.raises(ValueError, match="dropout_rng"):
        fx(np.ones((1, 2), dtype=np.int32), train=True)
    with pytest.raises(ValueError, match="pooler/dense/kernel"):
        params = dict(fx.params)
        params["pooler"] = {"dense": {"bias": params["pooler"]["dense"]["bias"]}}
        fx.params = params


def test_v4_tree_paths():
    _, fx = _pair(W.BertForMaskedLM, FlaxBertForMaskedLM)
    paths = {jax.tree_util.keystr(p, simple=True, separator="/") for p, _ in
             jax.tree_util.tree_leaves_with_path(fx.params_shape_tree)}
    for want in ("bert/embeddings/word_embeddings/embedding", "bert/embeddings/LayerNorm/scale",
                 "bert/encoder/layer/0/attention/self/query/kernel", "bert/encoder/layer/1/output/LayerNorm/bias",
                 "bert/encoder/layer/0/intermediate/dense/kernel", "cls/predictions/transform/dense/kernel",
                 "cls/predictions/transform/LayerNorm/scale", "cls/predictions/bias"):
        assert want in paths, want
    assert not any("decoder" in p for p in paths)  # tied: the head multiplies by the embedding table
