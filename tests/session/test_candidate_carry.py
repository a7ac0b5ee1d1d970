"""How a candidate chosen on one slice reaches the others (``Session(candidate_carry=)``,
``volsam.session.candidates.carry_candidate``), with the toy engine of three candidates (its answer: the
bright pixels in the box; the left half of that; the whole box)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.session.test_candidates import BLOCK, BOX, SHAPE, CandidateToy, _volume
from volsam.core.errors import PromptError, SettingsError
from volsam.propagation import EmbeddingCache, FrameStack, PropagationSettings
from volsam.session import Session
from volsam.session.candidates import ChosenCandidate, carry_candidate, object_reach


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
    # both ways, within the slices the object reached before the choice (8..31: the block)
    assert frames[0] == 20 and sorted(frames[1:]) == [*range(8, 20), *range(21, 32)]
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


def test_object_reach_is_the_run_of_slices_around_the_slice():
    mask = np.zeros(SHAPE, bool)
    mask[5:9, 20, 20] = True
    mask[11:15, 20, 20] = True  # a gap at 9..10
    assert object_reach(mask, 2, 12) == (11, 14)
    assert object_reach(mask, 2, 5) == (5, 8)
    assert object_reach(mask, 2, 10) is None  # nothing on the slice itself
    assert object_reach(mask, 0, 20) == (20, 20)  # along i: one column


def _carry(reach: tuple[int, int] | None) -> tuple[np.ndarray, set[int]]:
    """The left half chosen on slice 20 of the block, carried by the walk over a result that reached 12..27."""
    stack = FrameStack(np.where(_block(), 255, 0).astype(np.uint8), 2, lambda f: f)
    masks = np.zeros((SHAPE[0], SHAPE[1], SHAPE[2]), bool)
    masks[12:28] = _block()[12:28]
    masks[20, :, (BOX[0] + BOX[2]) // 2 + 1 :] = False
    cache = EmbeddingCache(CandidateToy(), stack)
    written = carry_candidate(
        stack, masks, 20, cache=cache, bounds=(0, SHAPE[0] - 1), rank=1, rule="walk",
        settings=PropagationSettings(), reach=reach,
    )  # fmt: skip
    return masks, written


def test_the_walk_carry_stays_within_the_reach_before_the_choice():
    masks, written = _carry((12, 27))
    reached = masks.any(axis=(1, 2)).nonzero()[0].tolist()
    assert reached == list(range(12, 28)) and written <= set(range(12, 28))
    # without the reach the same walk goes on to the block's ends (8..31): the reach is what held it
    free, _ = _carry(None)
    assert free.any(axis=(1, 2)).nonzero()[0].tolist() == list(range(8, 32))


def test_every_choice_in_a_cycle_keeps_the_reach_before_the_first():
    s, obj = _session("walk")
    s.choose_candidate(obj, 20, 1)
    assert s.prompts(obj)[-1].reach == (8, 31)
    s.add_box(obj, 25, (0, 0, 5, 5))  # nothing there: the object now ends at slice 24
    assert s.mask(obj).any(axis=(1, 2)).nonzero()[0].max() == 24
    s.choose_candidate(obj, 20, 2)  # the next choice on slice 20 (the earlier one is replaced)
    chosen = [p for p in s.prompts(obj) if isinstance(p, ChosenCandidate)]
    assert [p.rank for p in chosen] == [2] and chosen[0].reach == (8, 31)
    s.add_box(obj, 20, BOX)  # a new box on the slice starts again: the next choice measures the reach anew
    s.choose_candidate(obj, 20, 1)
    assert s.prompts(obj)[-1].reach == (8, 24)
