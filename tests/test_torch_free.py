"""The framework-free layers stay framework-free: configs, generation configs, storage, the family records, the
key maps and the tokenizers work without importing torch, TensorFlow, JAX or Flax (a TF or Flax wing, or a
tokenizer-only user, must not pay for, or even need, torch); and ``import warmstart`` does not import
huggingface_hub either (it takes about a second to import and is needed only to resolve a hub name).

Each check runs in a fresh interpreter: this test process has long since imported torch, so ``sys.modules``
here proves nothing.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

FRAMEWORKS = ("torch", "tensorflow", "jax", "flax")
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sits", "##s", "on", "mat", "a"]


def _run(code: str, cwd: Path) -> str:
    """Run ``code`` in a fresh interpreter; fail with its stderr if it fails. Returns its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"subprocess failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _no_framework_check(names=FRAMEWORKS) -> str:
    # Printed instead of asserted in the child, so the failure names every offender and who imported it.
    return f"""
        import sys
        loaded = [m for m in {tuple(names)!r} if m in sys.modules]
        print("LOADED", loaded)
        """


def _write_fixtures(folder: Path) -> None:
    (folder / "bert").mkdir()
    (folder / "bert" / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    (folder / "cfg").mkdir()
    (folder / "cfg" / "config.json").write_text(json.dumps(
        {"model_type": "bert", "vocab_size": len(VOCAB), "hidden_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 4, "intermediate_size": 37}), encoding="utf-8")
    (folder / "cfg" / "generation_config.json").write_text(json.dumps(
        {"max_new_tokens": 7, "num_beams": 2, "eos_token_id": 3}), encoding="utf-8")
    (folder / "bpe").mkdir()  # vocab.json / merges.txt are written by the child (it builds the byte alphabet)


def test_framework_free_layers_import_no_framework(tmp_path):
    _write_fixtures(tmp_path)
    out = _run("""
        import numpy as np
        import warmstart
        from warmstart import AutoConfig, BertConfig, GenerationConfig

        config = BertConfig(vocab_size=12, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=37)
        assert config.to_dict()["hidden_size"] == 32
        loaded = AutoConfig.from_pretrained("cfg")
        assert type(loaded).__name__ == "BertConfig" and loaded.intermediate_size == 37, loaded
        gen = GenerationConfig(max_new_tokens=5, do_sample=False)
        assert gen.max_new_tokens == 5
        gen = GenerationConfig.from_pretrained("cfg")
        assert (gen.max_new_tokens, gen.num_beams) == (7, 2), gen

        import warmstart.checkpoint.arrays
        import warmstart.checkpoint.flax_io  # a Flax checkpoint is readable without jax (numpy + msgpack)
        import warmstart.checkpoint.flax_layout
        import warmstart.checkpoint.keymaps
        import warmstart.config.loading
        import warmstart.families
        import warmstart.outputs
        import warmstart.storage.atomic
        import warmstart.storage.hub
        import warmstart.storage.weights
        from warmstart.families import FAMILIES
        for record in FAMILIES.values():
            record.config_class()  # reading a record and building its config class pulls in no framework

        # The key maps on numpy arrays, both ways, fused q/k/v included.
        from warmstart.checkpoint.keymaps import KEYMAPS
        rng = np.random.default_rng(0)
        shapes = {"embeddings.word_embeddings.weight": (12, 8), "encoder.layer.0.attention.self.query.weight": (8, 8),
                  "encoder.layer.0.attention.self.key.weight": (8, 8),
                  "encoder.layer.0.attention.self.value.weight": (8, 8),
                  "encoder.layer.0.attention.self.query.bias": (8,), "encoder.layer.0.attention.self.key.bias": (8,),
                  "encoder.layer.0.attention.self.value.bias": (8,)}
        theirs = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        ours, origin, incomplete = KEYMAPS["bert"].to_ours(theirs, model_has_prefix=False)
        assert not incomplete and len(ours) < len(theirs), sorted(ours)  # q, k and v were fused
        back = KEYMAPS["bert"].to_theirs(ours, model_has_prefix=False)
        assert sorted(back) == sorted(theirs), (sorted(back), sorted(theirs))
        for k in theirs:
            assert isinstance(back[k], np.ndarray) and np.array_equal(back[k], theirs[k]), k
        # GPT-2's Conv1D weights are stored transposed: the numpy verbs transpose them too.
        conv = {"h.0.attn.c_attn.weight": rng.standard_normal((8, 24)).astype(np.float32)}
        g_ours, _, _ = KEYMAPS["gpt2"].to_ours(conv, model_has_prefix=False)
        g_back = KEYMAPS["gpt2"].to_theirs(g_ours, model_has_prefix=False)
        assert np.array_equal(g_back["h.0.attn.c_attn.weight"], conv["h.0.attn.c_attn.weight"])

        # Tokenizers, slow and fast, to lists and to numpy.
        from warmstart import BertTokenizer, BertTokenizerFast, GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer
        from warmstart.tokenizers.bpe_model import bytes_to_unicode
        for cls in (BertTokenizer, BertTokenizerFast):
            tok = cls(vocab_file="bert/vocab.txt")
            plain = tok(["the cat sits", "a cat"], padding=True, return_tensors=None)
            assert plain["input_ids"][0] == [2, 5, 6, 7, 3], plain
            arrays = tok(["the cat sits", "a cat"], padding=True, return_tensors="np")
            assert isinstance(arrays["input_ids"], np.ndarray) and arrays["input_ids"].shape == (2, 5), arrays

        # A tokenizer saved and found again by AutoTokenizer (through the family records).
        from warmstart import AutoTokenizer
        BertTokenizerFast(vocab_file="bert/vocab.txt").save_pretrained("saved")
        again = AutoTokenizer.from_pretrained("saved")
        assert again("the cat sits")["input_ids"] == [2, 5, 6, 7, 3], type(again)

        # A byte-level BPE vocabulary: the 256 byte symbols plus two merges (GPT-2 and RoBERTa read the same files).
        import json
        chars = list(bytes_to_unicode().values())
        merges = [("c", "a"), ("ca", "t")]
        vocab = {c: i for i, c in enumerate(chars)}
        vocab.update({"ca": 256, "cat": 257, "<|endoftext|>": 258, "<s>": 259, "</s>": 260, "<pad>": 261,
                      "<unk>": 262, "<mask>": 263})
        with open("bpe/vocab.json", "w") as f:
            json.dump(vocab, f)
        with open("bpe/merges.txt", "w") as f:
            f.write("#version: 0.2\\n" + "".join(f"{a} {b}\\n" for a, b in merges))
        for cls in (GPT2Tokenizer, GPT2TokenizerFast, RobertaTokenizer):
            tok = cls(vocab_file="bpe/vocab.json", merges_file="bpe/merges.txt")
            ids = tok("cat", return_tensors="np")["input_ids"]
            assert isinstance(ids, np.ndarray) and 257 in ids.tolist()[0], (cls.__name__, ids)
        """ + _no_framework_check(), tmp_path)
    assert "LOADED []" in out, f"a framework-free layer imported a framework: {out}"


def test_import_warmstart_alone_is_cheap(tmp_path):
    # huggingface_hub is imported by storage/hub.py only, which loaders import when a name must be resolved.
    out = _run("import warmstart, warmstart.families, warmstart.config, warmstart.tokenizers"
               + textwrap.dedent(_no_framework_check((*FRAMEWORKS, "huggingface_hub"))), tmp_path)
    assert "LOADED []" in out, f"import warmstart pulled in: {out}"


def test_flax_classes_without_jax_name_what_to_install(tmp_path):
    # sys.modules[name] = None makes "import name" fail as if it were not installed.
    out = _run("""
        import sys
        sys.modules["jax"] = None
        sys.modules["flax"] = None
        import warmstart
        for name in ("FlaxBertModel", "FlaxGPT2LMHeadModel", "FlaxAutoModel"):
            try:
                getattr(warmstart, name)
            except ImportError as err:
                print("ERR", name, err)
        """, tmp_path)
    lines = [line for line in out.splitlines() if line.startswith("ERR")]
    assert len(lines) == 3, out
    assert all("pip install 'warmstart[flax]'" in line for line in lines), out
