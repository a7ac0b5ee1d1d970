"""How a candidate chosen on one slice reaches the others (``Session(candidate_carry=)``,
``volsam.session.candidates.carry_candidate``), with the toy engine of three candidates (its answer: the
bright pixels in the box; the left half of that; the whole box)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.session.test_candidates import BLOCK, BOX, SHAPE, CandidateToy, _volume
from volsam.core.errors import PromptError, SettingsError
from volsam.session import Session


def _session(rule: str) -> tuple[Session, int]:
    s = Session(_volume(), engine=CandidateToy(), modality="MR", candidate_carry=rule)
    obj = s.add_object(name="block")
    s.add_box(obj, 20, BOX)
    return s, obj


def _block() -> np.ndarray:
    block = np.zeros(SHAPE, bool)
    block[BLOCK] = True
    return block


def test_similar_carries_the_chosen_half_through_the_whole_object():
    s, obj = _session("similar")
    frames: list[int] = []
    s.on_frame = frames.append
    s.choose_candidate(obj, 20, 1)  # the left half of the block on slice 20
    left = _block()
    left[:, :, (BOX[0] + BOX[2]) // 2 + 1 :] = False
    # each neighbour takes the candidate most like the previous slice's mask: the left half again, on every
    # slice of the block, and the walk ends where the block does
    assert np.array_equal(s.mask(obj), left)
    # both ways, up to the first slice where the model's own answer is empty
    assert frames[0] == 20 and sorted(frames[1:]) == [7, *range(8, 20), *range(21, 32), 32]
    s.undo()
    assert np.array_equal(s.mask(obj), _block())


def test_same_follows_the_chosen_rank_on_every_slice():
    s, obj = _session("same")
    s.choose_candidate(obj, 20, 2)  # the whole box, whatever is in it
    whole = np.zeros(SHAPE[1:], bool)
    whole[BOX[1] : BOX[3] + 1, BOX[0] : BOX[2] + 1] = True
    got = s.mask(obj)
    # rank 2 on every slice of the object: the whole box of the previous mask; the object ends where the
    # model's own answer is empty
    assert all(np.array_equal(got[k], whole) for k in range(8, 32))
    assert not got[:8].any() and not got[32:].any()


def test_local_keeps_the_corrections_rule_and_walk_regrows_from_the_choice():
    local, obj = _session("local")
    local.choose_candidate(obj, 20, 1)
    walk, wobj = _session("walk")
    walk.choose_candidate(wobj, 20, 1)
    block = _block()
    for s, o in ((local, obj), (walk, wobj)):
        m = s.mask(o)
        assert m[20].sum() < block[20].sum() and not (m & ~block).any()
    # the walk carries the choice both ways to the block's ends, regrowing within its growth limit
    assert walk.mask(wobj).any(axis=(1, 2)).nonzero()[0].tolist() == list(range(8, 32))


def test_refusals():
    with pytest.raises(SettingsError, match="carry rule 'rank'"):
        Session(_volume(), engine=CandidateToy(), modality="MR", candidate_carry="rank")
    s, obj = _session("similar")
    with pytest.raises(PromptError, match="candidate 3 does not exist"):
        s.choose_candidate(obj, 20, 3)
    assert len(s.candidates(obj, 20)) == 3
