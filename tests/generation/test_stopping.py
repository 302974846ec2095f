"""Stopping: EOS ids, stop strings (against transformers), max_time, custom criteria, lengths."""
import pytest
import torch
import transformers as T

from warmstart.generation import MaxLengthCriteria, StoppingCriteria, StopStringCriteria
from gen_support import EOS, batch

TEXT = ["The tower is 324 metres tall, about the same height as an 81-storey building."]


class _Words:
    """A stand-in tokenizer: token i decodes to WORDS[i] (no spaces), to test overlap rules precisely."""

    def __init__(self, words):
        self.words = words

    def decode(self, ids, **kw):
        return "".join(self.words[i] for i in ids)


@pytest.mark.parametrize("pieces, stop, expected", [
    (["st", "op"], "stop", True), (["stop"], "stop", True), (["st", "opera"], "stop", True),
    (["sto", "pper"], "stop", True), (["las", "topper"], "stop", True), (["s", "to", "pped"], "stop", True),
    (["stop", "at"], "stop", False), (["st", "op", "at"], "stop", False), (["st", "opera", "tion"], "stop", False),
    (["x", "y"], "stop", False),
])
def test_stop_string_must_end_in_the_last_token(pieces, stop, expected):
    words = sorted(set(pieces))
    ids = torch.tensor([[words.index(p) for p in pieces]])
    assert bool(StopStringCriteria(_Words(words), [stop])(ids, None)[0]) is expected


def test_stop_strings_like_transformers(minilm_pair, minilm_dir, minilm_tokenizer):
    hf, ours = minilm_pair
    hf_tok = T.AutoTokenizer.from_pretrained(minilm_dir)
    enc = minilm_tokenizer(TEXT, return_tensors="pt")
    free = ours.generate(**enc, max_new_tokens=12)
    text = minilm_tokenizer.decode(free[0, 1:])
    stop = text.split()[3][:3]  # a piece of the fourth word: generation must stop exactly there
    for model, tok in ((hf, hf_tok), (ours, minilm_tokenizer)):
        out = model.generate(**enc, max_new_tokens=12, stop_strings=[stop, "zzz"], tokenizer=tok)
        if model is hf:
            want = out
    assert torch.equal(out, want) and out.shape[1] < free.shape[1]
    assert stop in minilm_tokenizer.decode(out[0, 1:])
    with pytest.raises(ValueError, match=r"stop_strings need the model's tokenizer"):
        ours.generate(**enc, max_new_tokens=3, stop_strings=["x"])


def test_rows_stopped_by_a_stop_string_are_padded(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    free = ours.generate(ids, attention_mask=mask, max_new_tokens=8)
    words = [f"<{i}>" for i in range(99)]
    stop = words[int(free[0, 3])]  # row 0's third generated token
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=8, stop_strings=stop, tokenizer=_Words(words))
    first = out[0, 1:].tolist().index(int(free[0, 3])) + 1
    assert torch.equal(out[0, :first + 1], free[0, :first + 1])
    assert (out[0, first + 1:] == 0).all()  # the pad id, while other rows go on
    assert out.shape[1] >= first + 1


def test_several_eos_ids_and_custom_criteria(seq2seq_pair):
    hf, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()

    class StopAfter(StoppingCriteria):
        def __init__(self, n):
            self.n = n

        def __call__(self, input_ids, scores, **kw):
            return torch.full((input_ids.shape[0],), input_ids.shape[1] >= self.n, dtype=torch.bool)

    a = hf.generate(ids, attention_mask=mask, max_new_tokens=12, eos_token_id=EOS,
                    stopping_criteria=T.StoppingCriteriaList([T.MaxLengthCriteria(6)]))
    b = ours.generate(ids, attention_mask=mask, max_new_tokens=12, eos_token_id=EOS,
                      stopping_criteria=[MaxLengthCriteria(6)])
    assert torch.equal(a, b) and b.shape[1] == 6
    c = ours.generate(ids, attention_mask=mask, max_new_tokens=12, stopping_criteria=[StopAfter(4)])
    assert c.shape[1] == 4


def test_max_time_stops_early(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, _ = batch(rows=1)
    out = ours.generate(ids, max_new_tokens=50, max_time=1e-9)  # already over budget after the first token
    assert out.shape[1] == 2


def test_default_length_is_twenty_in_all(seq2seq_pair, causal_pair):
    """v4's default (issue 11): max_length=20 counts the decoder start token / the prompt (transformers 5: 20 new)."""
    _, ours = seq2seq_pair("bert2bert")
    ids, _ = batch(rows=1)
    with pytest.warns(UserWarning, match=r"model-agnostic default max_length=20"):
        assert ours.generate(ids).shape[1] == 20
    _, lm = causal_pair("bert")
    prompt = torch.randint(4, 90, (1, 50))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"already has 50 tokens but the default"):
        lm.generate(prompt)
    assert lm.generate(prompt, max_length=20 + 40).shape[1] == 60
