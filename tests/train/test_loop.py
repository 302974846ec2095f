"""The fine-tuning loop: schedules and parameter groups against transformers, label preparation, a short run that
learns and whose saved model transformers loads with the same logits, evaluation, and bad input failing before
any weights are loaded."""
import json
import math
import random

import pytest
import torch
from tiny_seq2seq import one_thread, pairs, tiny_bert, write_jsonl

from warmstart.train import loop
from warmstart.train.config import TrainingConfig
from warmstart.train.evaluate import eval_loss, evaluate, rouge
from warmstart.train.loop import lr_factor, parameter_groups, prepare_features, special_ids, train


single_thread = pytest.fixture(autouse=True, scope="module")(one_thread)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {"bert": tiny_bert(root / "bert"), "nodrop": tiny_bert(root / "nodrop", dropout=0.0),
            "train": write_jsonl(root / "train.jsonl", pairs(48, seed=0)),
            "valid": write_jsonl(root / "valid.jsonl", pairs(12, seed=1)), "root": root}


def config(assets, tmp_path, **kw) -> TrainingConfig:
    base = {"output_dir": str(tmp_path / "out"), "train_file": str(assets["train"]), "encoder": str(assets["bert"]),
            "batch_size": 8, "max_steps": 6, "learning_rate": 2e-3, "progress": False, "verbose": False,
            "max_new_tokens": 8, "logging_steps": 1}
    return TrainingConfig(**{**base, **kw})


# -- pieces ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,theirs", [("linear", "get_linear_schedule_with_warmup"),
                                         ("cosine", "get_cosine_schedule_with_warmup"),
                                         ("constant", "get_constant_schedule_with_warmup")])
def test_schedules_match_transformers(kind, theirs):
    import transformers

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    make = getattr(transformers, theirs)
    sched = make(opt, 7) if kind == "constant" else make(opt, 7, 50)
    for step in range(55):
        assert lr_factor(step, 7, 50, kind) == pytest.approx(sched.get_last_lr()[0], abs=1e-12), step
        opt.step()
        sched.step()


def test_parameter_groups_decay_matrices_only(assets):
    from warmstart import EncoderDecoderModel

    model = EncoderDecoderModel.from_encoder_decoder_pretrained(assets["bert"], assets["bert"])
    model.encoder.pooler.requires_grad_(False)
    groups, names = parameter_groups(model, 0.01)
    decay = {id(p) for p in groups[0]["params"]}
    named = dict(model.named_parameters())
    assert groups[0]["weight_decay"] == 0.01 and groups[1]["weight_decay"] == 0.0
    assert len(names) == len(set(names)) == len(groups[0]["params"]) + len(groups[1]["params"])
    assert not any("pooler" in n for n in names)  # frozen: never in the optimizer
    for name in names:
        is_norm = "norm" in name.rsplit(".", 2)[-2].lower()
        assert (id(named[name]) in decay) == (not name.endswith("bias") and not is_norm), name


def test_special_ids_and_labels_follow_the_bert2bert_recipe(assets):
    from warmstart import BertTokenizerFast
    from warmstart.train import Seq2SeqExample

    tok = BertTokenizerFast.from_pretrained(assets["bert"])
    ids = special_ids(tok)
    assert ids == {"decoder_start_token_id": tok.cls_token_id, "eos_token_id": tok.sep_token_id,
                   "pad_token_id": tok.pad_token_id}
    ex = [Seq2SeqExample("red cat", "cat red"), Seq2SeqExample("dog", "big old red cat runs")]
    feats = prepare_features(ex, tok, tok, ids, None, 4)
    assert feats[0]["labels"] == tok.convert_tokens_to_ids(["cat", "red", "[SEP]"])  # no leading [CLS]
    assert feats[1]["labels"] == tok.convert_tokens_to_ids(["big", "old", "[SEP]"])  # truncated, still ends in eos
    assert feats[0]["input_ids"] == tok("red cat")["input_ids"]


def test_labels_get_eos_when_the_tokenizer_adds_none():
    class NoSpecials:  # a GPT-2-like tokenizer: no [CLS]/[SEP]/pad, eos only
        cls_token_id = sep_token_id = pad_token_id = None
        bos_token_id = eos_token_id = 0

        def __call__(self, texts, truncation=False, max_length=None):
            ids = [[1 + len(w) for w in t.split()] for t in texts]
            return {"input_ids": [i[:max_length] if truncation else i for i in ids]}

    from warmstart.train import Seq2SeqExample

    tok = NoSpecials()
    ids = special_ids(tok)
    assert ids == {"decoder_start_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    feats = prepare_features([Seq2SeqExample("a bb", "ccc dddd eeeee")], tok, tok, ids, None, 3)
    assert feats[0]["labels"] == [4, 5, 0]


def test_rouge_is_rouge_score_mean_f_times_100():
    from rouge_score import rouge_scorer

    preds, refs = ["the cat sat on the mat", "dogs run"], ["a cat sitting on a mat", "the dog runs fast"]
    got = rouge(preds, refs)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    want = sum(scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)) / 2 * 100
    assert got["rougeL"] == pytest.approx(want)
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        rouge(preds, refs[:1])


# -- a run -------------------------------------------------------------------------------------------------
def test_run_learns_saves_for_transformers_and_evaluates(assets, tmp_path):
    import transformers

    from warmstart import BertTokenizerFast, EncoderDecoderModel
    from warmstart.train import read_seq2seq

    cfg = config(assets, tmp_path, eval_file=str(assets["valid"]), eval_before=True, max_steps=40,
                 learning_rate=3e-3, warmup_steps=4, logging_steps=5, batch_size=12)
    result = train(cfg)
    losses = [e["loss"] for e in result.log_history if "loss" in e]
    assert result.global_step == 40 and len(losses) == 8
    assert losses[-1] < losses[0] - 1.0, losses  # it learns
    assert result.eval_after.loss < result.eval_before.loss
    assert len(result.eval_after.predictions) == 12
    logged = json.loads((tmp_path / "out" / "train_log.json").read_text())
    assert logged == result.log_history

    folder = result.model_dir
    ours = EncoderDecoderModel.from_pretrained(folder)
    assert (ours.config.decoder_start_token_id, ours.config.eos_token_id, ours.config.pad_token_id) == (2, 3, 0)
    theirs = transformers.EncoderDecoderModel.from_pretrained(folder).eval()
    tok = BertTokenizerFast.from_pretrained(folder)
    assert transformers.AutoTokenizer.from_pretrained(folder)("red cat")["input_ids"] == tok("red cat")["input_ids"]
    batch = tok(["red cat runs", "blue"], padding=True, return_tensors="pt")
    labels = torch.tensor([[5, 6, 3], [7, 3, -100]])
    with torch.no_grad():
        a = ours(**batch, labels=labels)
        b = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=1e-5)

    # The eval figures are what evaluate() gives on the saved model.
    examples = read_seq2seq(assets["valid"])
    ids = special_ids(tok)
    feats = prepare_features(examples, tok, tok, ids, cfg.max_source_length, cfg.max_target_length)
    again = evaluate(ours, tok, examples, feats, max_new_tokens=8, **ids)
    assert again.loss == pytest.approx(result.eval_after.loss, rel=1e-5)
    assert again.predictions == result.eval_after.predictions


def test_eval_is_token_weighted_and_leaves_rng_alone(assets):
    from warmstart import BertTokenizerFast, EncoderDecoderModel
    from warmstart.train import DataCollatorForSeq2Seq, read_seq2seq

    tok = BertTokenizerFast.from_pretrained(assets["bert"])
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(assets["bert"], assets["bert"]).train()
    for k, v in special_ids(tok).items():
        setattr(model.config, k, v)
    feats = prepare_features(read_seq2seq(assets["valid"]), tok, tok, special_ids(tok), None, None)
    col = DataCollatorForSeq2Seq(tok)
    state = torch.get_rng_state()
    py_state = random.getstate()
    whole = eval_loss(model, feats, col, batch_size=len(feats))
    split = eval_loss(model, feats, col, batch_size=5)
    assert split == pytest.approx(whole, rel=1e-5) and math.isfinite(whole)
    assert torch.equal(torch.get_rng_state(), state) and random.getstate() == py_state
    assert model.training  # mode restored


def test_gradient_checkpointing_and_bf16(assets, tmp_path):
    base = config(assets, tmp_path, encoder=str(assets["nodrop"]), max_steps=3, output_dir=str(tmp_path / "a"))
    plain = train(base)
    ckpt = train(config(assets, tmp_path, encoder=str(assets["nodrop"]), max_steps=3, gradient_checkpointing=True,
                        output_dir=str(tmp_path / "b")))
    for x, y in zip(plain.log_history, ckpt.log_history):
        assert x["loss"] == pytest.approx(y["loss"], rel=1e-5)
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=1e-4)
    bf16 = train(config(assets, tmp_path, encoder=str(assets["nodrop"]), max_steps=3, bf16=True,
                        output_dir=str(tmp_path / "c")))
    assert all(math.isfinite(e["loss"]) for e in bf16.log_history)
    assert bf16.log_history[0]["loss"] == pytest.approx(plain.log_history[0]["loss"], rel=0.05)


# -- bad input, reported before any weights are loaded ---------------------------------------------------------
@pytest.fixture
def no_model(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the model was loaded although the input was bad")

    monkeypatch.setattr(loop, "_build_model", refuse)


def test_missing_column(assets, tmp_path, no_model):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"src": "red", "target": "red"}])
    with pytest.raises(ValueError, match=r"no 'source' column; the columns found are \['src', 'target'\]"):
        train(config(assets, tmp_path, train_file=str(bad)))


def test_empty_file(assets, tmp_path, no_model):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        train(config(assets, tmp_path, train_file=str(tmp_path / "empty.jsonl")))


def test_target_longer_than_the_decoder_positions(assets, tmp_path, no_model):
    long = " ".join(["red"] * 40)  # 40 tokens + [SEP] > the tiny decoder's 32 positions
    data = write_jsonl(tmp_path / "long.jsonl", [*pairs(3), {"source": "red", "target": long}])
    with pytest.raises(ValueError, match=r"1 target\(s\) do not fit the decoder's 32 positions; the longest, "
                                         r".*long.jsonl:4 .* has 41 tokens"):
        train(config(assets, tmp_path, train_file=str(data), max_target_length=None))
    with pytest.raises(ValueError, match="source"):  # and sources against the encoder's table
        train(config(assets, tmp_path, train_file=str(write_jsonl(tmp_path / "s.jsonl", [
            {"source": long, "target": "red"}])), max_source_length=None))


def test_tokenizer_that_does_not_fit_the_model(assets, tmp_path, no_model, minilm_dir):
    with pytest.raises(ValueError, match=r"encoder's tokenizer has 30522 tokens but the encoder's vocab_size is 52"):
        train(config(assets, tmp_path, tokenizer=str(minilm_dir)))


def test_model_folder_that_is_not_an_encoder_decoder(assets, tmp_path, no_model):
    with pytest.raises(ValueError, match="'bert' checkpoint, not an EncoderDecoderModel"):
        train(config(assets, tmp_path, encoder=None, decoder=None, model=str(assets["bert"])))


@pytest.mark.parametrize("change,message", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"lr_scheduler": "step"}, "lr_scheduler must be one of"),
    ({"learning_rate": -1.0}, "learning_rate must be a number >= 0.0, got -1.0"),
    ({"adam_beta2": 1.0}, r"adam_beta2 must be a number \[0.0, 1.0\)"),
    ({"encoder": None, "decoder": None}, "say what to train"),
    ({"model": "somewhere"}, "not both"),
    ({"eval_steps": 5}, "need an eval_file"),
    ({"max_steps": 0}, "max_steps must be an integer >= 1"),
])
def test_bad_settings(assets, tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        config(assets, tmp_path, **change)


def test_bert2gpt2_uses_the_decoders_tokenizer_and_transformers_loads_it(assets, tmp_path):
    import transformers
    from tiny_seq2seq import tiny_gpt2

    from warmstart import EncoderDecoderModel, GPT2TokenizerFast

    gpt2 = tiny_gpt2(tmp_path / "gpt2")
    dec_tok = GPT2TokenizerFast.from_pretrained(gpt2)
    eos = dec_tok.eos_token_id
    result = train(config(assets, tmp_path, decoder=str(gpt2), max_steps=4, eval_file=str(assets["valid"]),
                          max_new_tokens=4))
    folder = result.model_dir
    assert (folder / "decoder_tokenizer" / "vocab.json").is_file()  # targets were tokenized by GPT-2's tokenizer
    ours = EncoderDecoderModel.from_pretrained(folder)
    assert (ours.config.decoder_start_token_id, ours.config.eos_token_id, ours.config.pad_token_id) == (eos, eos, eos)
    theirs = transformers.EncoderDecoderModel.from_pretrained(folder).eval()
    ids = torch.tensor([[2, 5, 6, 3]])
    labels = torch.tensor(dec_tok(" red blue")["input_ids"] + [eos])[None]
    # The start token is also GPT-2's pad (eos), so the mask is given as the loop's collator gives it: without
    # one, both libraries would mask the start position itself (and fill that fully masked row differently).
    mask = torch.ones_like(labels)
    with torch.no_grad():
        a = ours(input_ids=ids, labels=labels, decoder_attention_mask=mask)
        b = theirs(input_ids=ids, labels=labels, decoder_attention_mask=mask)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-5)
