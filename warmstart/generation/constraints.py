"""Positive constraints for constrained beam search: words the output must contain.

A constraint is a small state machine over generated tokens: ``advance()`` names the token(s) that would bring it one
step closer to being met, ``update(token)`` feeds it the token actually generated and reports
``(stepped, completed, reset)``. ``PhrasalConstraint`` wants one exact token sequence, ``DisjunctiveConstraint``
any one of several (a prefix tree of alternatives); ``ConstraintListState`` follows one hypothesis through a list
of them and gives the "bank" (how much progress it made) that constrained beam search ranks hypotheses by
(Hokamp & Liu 2017, "Lexically Constrained Decoding for Sequence Generation Using Grid Beam Search"; the
public API and its state rules are transformers v4's, so that searches pick the same tokens).

Pure Python, no torch: the search (constrained_beam.py) feeds them plain ints.

Where these classes follow v4 on purpose, including one rule that looks like a slip:
- a ``DisjunctiveConstraint``'s stateful ``copy`` continues the *same* progress list as the original, so tokens
  fed to one copy show in the other. v4's search makes one such copy per candidate token of an in-progress
  alternative and feeds them in turn; which "bank" each candidate lands in (and so which tokens are generated)
  depends on that sharing, so it is kept for token parity;
- updating a constraint with a token that does not advance it starts it over (even once it was complete).
Where they differ from v4.46, each invisible to the search (it replaces a reset constraint by a fresh copy and
never resets or copies a finished list state): ``PhrasalConstraint.reset()`` returns to the very start (v4 kept
the first token counted), ``ConstraintListState.reset()`` also clears ``completed`` and ``copy()`` keeps it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Constraint", "PhrasalConstraint", "DisjunctiveConstraint", "ConstraintListState"]


def _is_token(t) -> bool:
    return isinstance(t, int) and not isinstance(t, bool) and t >= 0


def _check_token(token_id, where: str) -> None:
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        raise TypeError(f"{where} takes a token id (an int), got {token_id!r} of type {type(token_id).__name__}")


class Constraint(ABC):
    """Base of every constraint. A subclass must reach completion by following its own advice: repeatedly
    ``update(advance())`` (a list from ``advance()`` offers alternatives; any one of them) ends with
    ``completed`` true and ``remaining() == 0``. ``Constraint.__init__`` walks that path once (with a ``reset()``
    after the first step) and raises a ValueError when it does not hold; the built-in constraints are checked by
    construction instead. Subclasses also set ``seqlen``: the most steps completion can take."""

    def __init__(self):
        self.test()

    def test(self) -> None:
        """Walk the constraint to completion by its own advice; fail loudly if that does not work."""
        name = type(self).__name__
        steps, completed = 0, False
        while not completed:
            if steps == 1:
                self.reset()  # resetting mid-way must lead back to the same path
            advice = self.advance()
            token = advice[0] if isinstance(advice, list) and advice else advice
            if not isinstance(token, int) or not self.does_advance(token):
                raise ValueError(f"{name} is not a valid Constraint: does_advance() rejects what advance() "
                                 f"proposed ({advice!r})")
            _, completed, _ = self.update(token)
            steps += 1
            if steps > 10000:
                raise ValueError(f"{name} is not a valid Constraint: 10000 updates with its own advice did not "
                                 "complete it")
        if self.remaining() != 0:
            raise ValueError(f"{name} is not a valid Constraint: remaining() is {self.remaining()} once completed, "
                             "not 0")
        self.reset()

    @abstractmethod
    def advance(self):
        """The token id (int) or token ids (list: alternatives) that make progress; None when complete."""

    @abstractmethod
    def does_advance(self, token_id: int) -> bool:
        """Would ``token_id`` make progress? (does not change the state)"""

    @abstractmethod
    def update(self, token_id: int) -> tuple[bool, bool, bool]:
        """Feed the generated ``token_id``; return ``(stepped, completed, reset)``."""

    @abstractmethod
    def reset(self) -> None:
        """Forget all progress."""

    @abstractmethod
    def remaining(self) -> int:
        """How many more steps completion takes."""

    @abstractmethod
    def copy(self, stateful: bool = False) -> "Constraint":
        """A new constraint for the same words; with ``stateful`` it also carries this one's progress."""


class PhrasalConstraint(Constraint):
    """The output must contain ``token_ids`` in order, as one contiguous run."""

    def __init__(self, token_ids: list[int]):
        # No self-test: this class meets the Constraint contract by construction (as in v4).
        if not isinstance(token_ids, (list, tuple)) or len(token_ids) == 0:
            raise ValueError(f"PhrasalConstraint needs a non-empty list of token ids, got {token_ids!r}")
        bad = [t for t in token_ids if not _is_token(t)]
        if bad:
            raise ValueError(f"PhrasalConstraint token ids must be integers >= 0, got {bad[0]!r} in {token_ids!r}")
        self.token_ids = list(token_ids)
        self.seqlen = len(self.token_ids)
        self.fulfilled_idx = -1  # index of the last token already generated
        self.completed = False

    def advance(self):
        return None if self.completed else self.token_ids[self.fulfilled_idx + 1]

    def does_advance(self, token_id: int) -> bool:
        _check_token(token_id, "PhrasalConstraint.does_advance")
        return not self.completed and token_id == self.token_ids[self.fulfilled_idx + 1]

    def update(self, token_id: int) -> tuple[bool, bool, bool]:
        _check_token(token_id, "PhrasalConstraint.update")
        if self.does_advance(token_id):
            self.fulfilled_idx += 1
            self.completed = self.fulfilled_idx == self.seqlen - 1
            return True, self.completed, False
        self.reset()  # the run is broken: the phrase must start over
        return False, False, True

    def reset(self) -> None:
        self.fulfilled_idx, self.completed = -1, False

    def remaining(self) -> int:
        return self.seqlen - (self.fulfilled_idx + 1)

    def copy(self, stateful: bool = False) -> "PhrasalConstraint":
        new = PhrasalConstraint(self.token_ids)
        if stateful:
            new.fulfilled_idx, new.completed = self.fulfilled_idx, self.completed
        return new

    def __repr__(self) -> str:
        return f"PhrasalConstraint({self.token_ids})"


class _Trie:
    """The alternatives of a DisjunctiveConstraint as a prefix tree: token -> subtree; a word ends at an empty one."""

    def __init__(self, words: list[list[int]]):
        self.root: dict = {}
        for word in words:
            node = self.root
            for token in word:
                node = node.setdefault(token, {})
        self.max_height = max(len(w) for w in words)
        if self._leaves(self.root) != len(words):
            # A word that is a prefix of another (or a repeat) would make "complete" ambiguous.
            raise ValueError(f"DisjunctiveConstraint: no alternative may equal another or be a prefix of another, "
                             f"got {words!r}")

    def _leaves(self, node: dict) -> int:
        return 1 if not node else sum(self._leaves(child) for child in node.values())

    def next_tokens(self, prefix: list[int]) -> list[int]:
        node = self.root
        for token in prefix:
            node = node[token]
        return list(node)  # insertion order: the order the alternatives were given


class DisjunctiveConstraint(Constraint):
    """The output must contain one of ``nested_token_ids`` (a list of alternative words, each a list of ids)."""

    def __init__(self, nested_token_ids: list[list[int]]):
        if not isinstance(nested_token_ids, (list, tuple)) or len(nested_token_ids) == 0:
            raise ValueError(f"DisjunctiveConstraint needs a non-empty list of alternatives, got {nested_token_ids!r}")
        for word in nested_token_ids:
            if not isinstance(word, (list, tuple)) or len(word) == 0:
                raise ValueError(f"DisjunctiveConstraint: each alternative must be a non-empty list of token ids, "
                                 f"got {word!r} in {nested_token_ids!r}")
            bad = [t for t in word if not _is_token(t)]
            if bad:
                raise ValueError(f"DisjunctiveConstraint token ids must be integers >= 0, got {bad[0]!r} in "
                                 f"{nested_token_ids!r}")
        self.token_ids = [list(w) for w in nested_token_ids]
        self.trie = _Trie(self.token_ids)
        self.seqlen = self.trie.max_height
        self.current_seq: list[int] = []  # the tokens of the alternative(s) generated so far
        self.completed = False

    def advance(self):
        return self.trie.next_tokens(self.current_seq) or None

    def does_advance(self, token_id: int) -> bool:
        _check_token(token_id, "DisjunctiveConstraint.does_advance")
        return token_id in self.trie.next_tokens(self.current_seq)

    def update(self, token_id: int) -> tuple[bool, bool, bool]:
        _check_token(token_id, "DisjunctiveConstraint.update")
        stepped = self.does_advance(token_id)
        if stepped:
            self.current_seq.append(token_id)  # in place: a stateful copy shares this list (module docstring)
        else:
            self.reset()
        self.completed = not self.trie.next_tokens(self.current_seq)
        return stepped, self.completed, not stepped

    def reset(self) -> None:
        self.completed, self.current_seq = False, []

    def remaining(self) -> int:
        # A shorter alternative can complete it before seqlen steps.
        return 0 if self.completed else self.seqlen - len(self.current_seq)

    def copy(self, stateful: bool = False) -> "DisjunctiveConstraint":
        new = DisjunctiveConstraint(self.token_ids)
        if stateful:
            new.current_seq, new.completed = self.current_seq, self.completed  # shared list: see module docstring
        return new

    def __repr__(self) -> str:
        return f"DisjunctiveConstraint({self.token_ids})"


class ConstraintListState:
    """Progress of one hypothesis through a list of constraints: which are complete, which one is under way (at most
    one at a time: a token serves one constraint) and which are still pending."""

    def __init__(self, constraints: list[Constraint]):
        if not isinstance(constraints, (list, tuple)) or not constraints:
            raise ValueError(f"ConstraintListState needs a non-empty list of constraints, got {constraints!r}")
        self.constraints = list(constraints)
        self.max_seqlen = max(c.seqlen for c in self.constraints)  # the most steps any one constraint takes
        self.n_constraints = len(self.constraints)
        self.completed = False
        self.init_state()

    def init_state(self) -> None:
        self.complete_constraints: list[Constraint] = []
        self.inprogress_constraint: Constraint | None = None
        self.pending_constraints = [c.copy(stateful=False) for c in self.constraints]

    def get_bank(self) -> int:
        """Progress as one number: ``max_seqlen`` per complete constraint, plus the steps made on the one under
        way counted from the top (``max_seqlen - remaining``), so any progress outranks none."""
        partial = 0
        if self.inprogress_constraint is not None:
            partial = self.max_seqlen - self.inprogress_constraint.remaining()
        return len(self.complete_constraints) * self.max_seqlen + partial

    def advance(self) -> list[int] | None:
        """The tokens that make progress: the next one(s) of the constraint under way, else the first one(s) of
        every pending constraint; None when there are none."""
        sources = [self.inprogress_constraint] if self.inprogress_constraint is not None else self.pending_constraints
        tokens: list[int] = []
        for constraint in sources:
            advice = constraint.advance()
            if isinstance(advice, int):
                tokens.append(advice)
            elif isinstance(advice, list):
                tokens.extend(advice)
        return tokens or None

    def reset(self, token_ids: list[int] | None) -> None:
        """Start over and replay ``token_ids`` (the whole sequence so far)."""
        self.init_state()
        self.completed = False
        for token in token_ids or ():
            self.add(token)
            if self.completed:
                break

    def add(self, token_id: int) -> tuple[bool, bool]:
        """Feed one generated token; return ``(complete, stepped)`` for the constraint it touched."""
        _check_token(token_id, "ConstraintListState.add")
        if self.completed:
            return True, False
        if self.inprogress_constraint is not None:
            current = self.inprogress_constraint
            stepped, complete, reset = current.update(token_id)
            if reset:
                # The constraint under way broke off; only it starts over, the completed ones stay completed. The
                # breaking token is not tried on the other constraints (v4's rule).
                self.pending_constraints.append(current.copy(stateful=False))
                self.inprogress_constraint = None
            if complete:
                self.complete_constraints.append(current)
                self.inprogress_constraint = None
                if not self.pending_constraints:
                    self.completed = True
            return complete, stepped
        for i, constraint in enumerate(self.pending_constraints):
            if not constraint.does_advance(token_id):
                continue
            stepped, complete, _ = constraint.update(token_id)
            if not stepped:
                raise ValueError(f"{type(constraint).__name__}.update({token_id}) made no progress although "
                                 f"does_advance({token_id}) was true")
            if complete:
                self.complete_constraints.append(constraint)
            else:
                self.inprogress_constraint = constraint
            del self.pending_constraints[i]
            if not self.pending_constraints and self.inprogress_constraint is None:
                self.completed = True
            return complete, stepped  # one token serves at most one constraint
        return False, False

    def copy(self, stateful: bool = True) -> "ConstraintListState":
        new = ConstraintListState(self.constraints)
        if stateful:
            new.complete_constraints = [c.copy(stateful=True) for c in self.complete_constraints]
            if self.inprogress_constraint is not None:
                new.inprogress_constraint = self.inprogress_constraint.copy(stateful=True)
            new.pending_constraints = [c.copy() for c in self.pending_constraints]
            new.completed = self.completed
        return new
