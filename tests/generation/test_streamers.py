"""Streaming: text appears as it is generated and adds up to the final output, for greedy, sampling and beams."""
import threading

import torch
import transformers as T

import warmstart as W

TEXT = ["The tower is 324 metres tall, about the same height as an 81-storey building."]


def test_text_streamer_prints_like_transformers(minilm_pair, minilm_dir, minilm_tokenizer, capsys):
    hf, ours = minilm_pair
    enc = minilm_tokenizer(TEXT, return_tensors="pt")
    hf.generate(**enc, max_new_tokens=10, streamer=T.TextStreamer(T.AutoTokenizer.from_pretrained(minilm_dir),
                                                                  skip_prompt=True))
    theirs = capsys.readouterr().out
    out = ours.generate(**enc, max_new_tokens=10, streamer=W.TextStreamer(minilm_tokenizer, skip_prompt=True))
    printed = capsys.readouterr().out
    assert printed == theirs
    assert printed.strip() == minilm_tokenizer.decode(out[0, 1:])


def test_iterator_streamer_in_a_thread_with_sampling(minilm_pair, minilm_tokenizer):
    _, ours = minilm_pair
    enc = minilm_tokenizer(TEXT, return_tensors="pt")
    streamer = W.TextIteratorStreamer(minilm_tokenizer, skip_prompt=True, timeout=60)
    result = {}

    def run():
        torch.manual_seed(0)
        result["ids"] = ours.generate(**enc, do_sample=True, max_new_tokens=10, streamer=streamer)

    worker = threading.Thread(target=run)
    worker.start()
    pieces = list(streamer)
    worker.join()
    assert len(pieces) > 1 and "".join(pieces) == minilm_tokenizer.decode(result["ids"][0, 1:])


class _Recorder(W.TextStreamer):
    def __init__(self, tokenizer):
        super().__init__(tokenizer, skip_prompt=True)
        self.text, self.stable, self.best = [], [], []

    def put_beams(self, best, stable):
        self.stable.append(stable)
        super().put_beams(best, stable)

    def on_best_hypothesis(self, token_ids):
        self.best.append(list(token_ids))

    def on_finalized_text(self, text, stream_end=False):
        self.text.append(text)


def test_beam_search_streams_the_settled_prefix(minilm_pair, minilm_tokenizer):
    """transformers refuses streamers with beams; here tokens every candidate shares are streamed as they settle,
    the current best hypothesis is reported at each step, and the stream adds up to the returned sequence."""
    _, ours = minilm_pair
    enc = minilm_tokenizer(TEXT, return_tensors="pt")
    rec = _Recorder(minilm_tokenizer)
    kw = dict(num_beams=4, max_new_tokens=12, eos_token_id=minilm_tokenizer.sep_token_id)
    out = ours.generate(**enc, streamer=rec, **kw)
    assert torch.equal(out, ours.generate(**enc, **kw))  # streaming does not change the result
    assert rec.stable == sorted(rec.stable) and len(rec.best) == len(rec.stable) > 0
    final = out[0, 1:].tolist()
    assert all(final[:n] == rec.best[i][:n] for i, n in enumerate(rec.stable))  # settled tokens never change
    assert "".join(rec.text).strip() == minilm_tokenizer.decode(final)


def test_plain_streamer_gets_beam_result_at_the_end(minilm_pair, minilm_tokenizer):
    class Plain(W.generation.BaseStreamer):
        def __init__(self):
            self.calls = []

        def put(self, value):
            self.calls.append(value.tolist())

        def end(self):
            self.calls.append("end")

    _, ours = minilm_pair
    enc = minilm_tokenizer(TEXT, return_tensors="pt")
    streamer = Plain()
    out = ours.generate(**enc, num_beams=2, max_new_tokens=5, streamer=streamer)
    assert streamer.calls == [[[101]], out[0, 1:].tolist(), "end"]
