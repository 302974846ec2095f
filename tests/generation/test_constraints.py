"""The constraint classes of constrained beam search (PhrasalConstraint, DisjunctiveConstraint,
ConstraintListState), against state traces of transformers 4.46 (tests/assets/constrained/traces.json, made by
tests/assets/make_constrained_fixtures.py; transformers 5 removed these classes) and their documented rules."""
import json
from pathlib import Path

import pytest

import warmstart as W
from warmstart.generation import Constraint, ConstraintListState, DisjunctiveConstraint, PhrasalConstraint

TRACES = json.loads((Path(__file__).parents[1] / "assets" / "constrained" / "traces.json").read_text())


def _make(spec):
    kind, ids = spec
    return PhrasalConstraint(ids) if kind == "phrasal" else DisjunctiveConstraint(ids)


def test_public_names():
    assert W.PhrasalConstraint is PhrasalConstraint and W.DisjunctiveConstraint is DisjunctiveConstraint
    assert W.Constraint is Constraint and W.ConstraintListState is ConstraintListState
    assert issubclass(PhrasalConstraint, Constraint) and issubclass(DisjunctiveConstraint, Constraint)


@pytest.mark.parametrize("trace", TRACES["lists"], ids=lambda t: t["name"])
def test_list_state_follows_v4(trace):
    state = ConstraintListState([_make(s) for s in trace["constraints"]])
    for i, want in enumerate(trace["steps"]):
        complete, stepped = state.add(want["token"])
        got = {"token": want["token"], "complete": complete, "stepped": stepped, "completed": state.completed,
               "bank": state.get_bank(), "advance": state.advance(), "pending": len(state.pending_constraints),
               "done": len(state.complete_constraints), "in_progress": state.inprogress_constraint is not None}
        assert got == want, f"step {i} of {trace['tokens']}"


def test_reset_replays_a_sequence():
    trace = TRACES["lists"][0]
    replayed = ConstraintListState([_make(s) for s in trace["constraints"]])
    replayed.reset(trace["tokens"][:9])
    assert replayed.get_bank() == trace["steps"][8]["bank"]
    assert replayed.advance() == trace["steps"][8]["advance"]


@pytest.mark.parametrize("trace", TRACES["copies"], ids=lambda t: str(t["prefix"]))
def test_forced_continuations_follow_v4(trace):
    """What the search does for each beam: one stateful copy per advance() token, fed in turn. A disjunctive
    constraint under way shares its progress list between such copies (v4's rule, which decides banks)."""
    base = ConstraintListState([_make(s) for s in trace["constraints"]])
    base.reset(trace["prefix"])
    tokens = base.advance()
    assert tokens == trace["tokens"]
    forced = []
    for t in tokens:
        new = base.copy(stateful=True)
        new.add(t)
        forced.append(new)
    assert [s.get_bank() for s in forced] == trace["banks"]
    assert [s.completed for s in forced] == trace["completed"]
    assert base.get_bank() == trace["base_bank"]


@pytest.mark.parametrize("trace", TRACES["disjunctive"], ids=lambda t: str(t["words"]))
def test_disjunctive_constraint_follows_v4(trace):
    c = DisjunctiveConstraint(trace["words"])
    for want in trace["steps"]:
        t = want["token"]
        before = {"advance": c.advance(), "does_advance": c.does_advance(t)}
        stepped, completed, reset = c.update(t)
        got = {**before, "token": t, "stepped": stepped, "completed": completed, "reset": reset,
               "remaining": c.remaining(), "current_seq": list(c.current_seq)}
        assert got == want


def test_phrasal_constraint_documented_rules():
    c = PhrasalConstraint([5, 6, 7])
    assert (c.seqlen, c.advance(), c.remaining(), c.completed) == (3, 5, 3, False)
    assert c.does_advance(5) and not c.does_advance(6)
    assert c.update(5) == (True, False, False) and c.advance() == 6 and c.remaining() == 2
    assert c.update(6) == (True, False, False)
    saved = c.copy(stateful=True)
    assert c.update(7) == (True, True, False) and c.completed and c.advance() is None and c.remaining() == 0
    assert (saved.advance(), saved.remaining(), saved.completed) == (7, 1, False)  # the copy kept its own state
    assert c.update(9) == (False, False, True)  # a token that does not continue the phrase starts it over
    # reset() returns to the very start, as documented (v4.46 left the first token counted; its search never
    # observes it because a reset constraint is replaced by a fresh copy).
    assert (c.advance(), c.remaining(), c.completed) == (5, 3, False)
    fresh = c.copy()
    assert fresh.token_ids == [5, 6, 7] and fresh.remaining() == 3


def test_disjunctive_alternatives_of_different_lengths():
    c = DisjunctiveConstraint([[1, 2, 3], [4]])
    assert c.seqlen == 3 and c.advance() == [1, 4]
    assert c.update(4) == (True, True, False) and c.remaining() == 0 and c.advance() is None


def test_list_state_copy_and_reset_restart():
    state = ConstraintListState([PhrasalConstraint([5, 6]), PhrasalConstraint([7])])
    state.reset([5, 6, 7])
    assert state.completed and state.get_bank() == 2 * 2
    assert state.copy().completed  # the finished state is carried over by a stateful copy
    assert not state.copy(stateful=False).completed
    assert state.add(9) == (True, False)  # nothing changes once every constraint is met
    state.reset([5])
    assert not state.completed and state.get_bank() == 1 and state.advance() == [6]
    state.reset(None)
    assert state.get_bank() == 0 and state.advance() == [5, 7]


@pytest.mark.parametrize("bad, match", [
    ([], "non-empty list"), ("abc", "non-empty list"), ([1, -2], "-2"), ([1, 2.0], "2.0"), ([True], "True")])
def test_phrasal_rejects_bad_ids(bad, match):
    with pytest.raises(ValueError, match=match):
        PhrasalConstraint(bad)


@pytest.mark.parametrize("bad, match", [
    ([], "non-empty list"), ([[1], 2], "each alternative"), ([[1], []], "each alternative"), ([[1, -1]], "-1"),
    ([[1], [1, 2]], "prefix"), ([[1, 2], [1, 2]], "prefix")])
def test_disjunctive_rejects_bad_alternatives(bad, match):
    with pytest.raises(ValueError, match=match):
        DisjunctiveConstraint(bad)


def test_token_ids_must_be_ints():
    with pytest.raises(TypeError, match="int"):
        PhrasalConstraint([1]).update("1")
    with pytest.raises(TypeError, match="int"):
        DisjunctiveConstraint([[1]]).does_advance(1.0)
    with pytest.raises(TypeError, match="int"):
        ConstraintListState([PhrasalConstraint([1])]).add(None)
    with pytest.raises(ValueError, match="non-empty list of constraints"):
        ConstraintListState([])


class _EndsWith(Constraint):
    """A custom constraint: the output must contain ``token`` twice in a row."""

    def __init__(self, token, broken=False):
        self.token, self.broken, self.count, self.seqlen = token, broken, 0, 2
        super().__init__()

    def advance(self):
        return None if self.count == 2 else self.token

    def does_advance(self, token_id):
        return self.count < 2 and token_id == self.token

    def update(self, token_id):
        if self.does_advance(token_id) and not self.broken:
            self.count += 1
            return True, self.count == 2, False
        self.reset()
        return False, False, True

    def reset(self):
        self.count = 0

    def remaining(self):
        return 2 - self.count

    def copy(self, stateful=False):
        new = _EndsWith(self.token)
        if stateful:
            new.count = self.count
        return new


def test_custom_constraints_are_self_checked():
    c = _EndsWith(7)
    assert c.count == 0  # the self-check leaves it at the start
    state = ConstraintListState([c])
    state.reset([7, 3, 7, 7])
    assert state.completed
    with pytest.raises(ValueError, match="not a valid Constraint"):
        _EndsWith(7, broken=True)
