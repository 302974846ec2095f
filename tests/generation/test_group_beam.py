"""Diverse (group) beam search. transformers 5 moved it to a Hub repository, so there is no oracle here: these tests
check its defining properties (Vijayakumar et al. 2016) and v4's conventions."""
import torch

from gen_support import EOS, batch


def test_groups_of_one_beam_without_penalty_are_greedy(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    greedy = ours.generate(ids, attention_mask=mask, max_new_tokens=8)
    groups = ours.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=3, num_beam_groups=3,
                           diversity_penalty=0.0, num_return_sequences=3)
    assert torch.equal(groups, greedy.repeat_interleave(3, 0))


def test_a_large_penalty_makes_groups_pick_different_tokens(seq2seq_pair):
    """Hamming diversity: a token chosen by an earlier group at the same step costs `diversity_penalty`."""
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=3, num_beam_groups=3,
                        diversity_penalty=1e4, num_return_sequences=3)
    for rows in out.view(3, 3, -1):  # (input, group result, tokens)
        gen = rows[:, 1:]
        for i in range(3):
            for j in range(i + 1, 3):
                assert (gen[i] != gen[j]).all(), f"groups chose the same token at some step:\n{rows}"


def test_outputs_and_eos(seq2seq_pair):
    _, ours = seq2seq_pair("bert2gpt2")
    ids, mask = batch()
    out = ours.generate(ids, attention_mask=mask, max_new_tokens=8, num_beams=4, num_beam_groups=2,
                        diversity_penalty=0.5, num_return_sequences=2, eos_token_id=EOS, return_dict_in_generate=True,
                        output_scores=True, length_penalty=0.8)
    seqs, scores = out.sequences, out.sequences_scores
    assert seqs.shape[0] == 6 and seqs.shape[1] <= 9 and (seqs[:, 0] == 3).all()
    assert (scores.view(3, 2)[:, 0] >= scores.view(3, 2)[:, 1]).all()  # best first
    assert len(out.scores) >= seqs.shape[1] - 1  # one (rows, vocab) tensor per search step
    for row in seqs.tolist():
        gen = row[1:]
        ends = [i for i, t in enumerate(gen) if t in EOS]
        if ends:  # a finished hypothesis: EOS, then padding only
            assert all(t == 0 for t in gen[ends[0] + 1:]), row
    assert out.beam_indices.shape[0] == 6 and int(out.beam_indices.max()) < 12


def test_same_result_twice_and_group_validation(seq2seq_pair):
    _, ours = seq2seq_pair("bert2bert")
    ids, mask = batch()
    kw = dict(max_new_tokens=6, num_beams=4, num_beam_groups=2, diversity_penalty=1.0)
    assert torch.equal(ours.generate(ids, attention_mask=mask, **kw), ours.generate(ids, attention_mask=mask, **kw))
