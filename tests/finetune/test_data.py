"""Training samples: the split, clips, prompts, seeded augmentation, and the LiteMedSAM engine's input."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.finetune.helpers import CASES
from volsam.finetune.config import AugmentConfig, DataConfig, PromptConfig
from volsam.finetune.data import ClipDataset, make_split, open_training_dataset, prepare_case, select_cases
from volsam.finetune.distributed import Dist
from volsam.finetune.schedule import epoch_batches, lr_factor


@pytest.fixture(scope="module")
def cases():
    data = DataConfig(cases=tuple(CASES[:2]))
    return select_cases(open_training_dataset(data), data)


def test_split_is_seeded_disjoint_and_complete():
    ids = [f"case-{n:02d}" for n in range(10)]
    a, b = make_split(ids, 0.2, seed=3), make_split(list(reversed(ids)), 0.2, seed=3)
    assert a == b and len(a.val) == 2 and not set(a.val) & set(a.train) and set(a.val + a.train) == set(ids)
    assert make_split(ids, 0.2, seed=4).val != a.val or make_split(ids, 0.2, seed=5).val != a.val
    assert make_split(ids[:3], 0.01, seed=0).val  # a positive fraction holds out at least one case
    assert make_split(ids, 0.0, seed=0).val == ()


def test_split_groups_keep_related_cases_together():
    ids = ["ring-01", "ring-01-flip-k", "ring-01-aniso", "dark-00", "dark-00-flip-ik", "small-02", "flat-03"]
    for seed in range(6):
        split = make_split(ids, 0.25, seed=seed, group=r"^[a-z]+-\d+")
        assert len({i.split("-flip")[0].split("-aniso")[0] for i in split.val}) == 1  # one lesion held out
        for related in (["ring-01", "ring-01-flip-k", "ring-01-aniso"], ["dark-00", "dark-00-flip-ik"]):
            assert len({r in split.val for r in related}) == 1


def test_clips_start_on_the_object_and_are_reproducible(cases):
    data = DataConfig(clip_length=4, clip_stride=3, augment=AugmentConfig(reverse=0.5))
    ds = ClipDataset(cases, data, 64, "stretch", seed=0, train=True)
    for n, ref in enumerate(ds.refs):
        masks = prepare_case(cases[ref.case], data).masks[ref.target]
        assert masks[ref.start].any() and ref.start + 4 <= len(masks)
        item = ds[(n, 2)]
        assert item["pixels"].shape == (4, 64, 64) and item["masks"][0].any() and item["present"][0] == 1
    a, b, other = ds[(1, 2)], ds[(1, 2)], ds[(1, 3)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["pixels"], other["pixels"])  # another epoch, other augmentation


def test_validation_items_have_no_augmentation_and_a_tight_box(cases):
    data = DataConfig(prompts=PromptConfig(box_jitter=0.3))
    ds = ClipDataset(cases, data, 64, "stretch", seed=0, train=False)
    item = ds[(0, 7)]
    assert torch.equal(item["pixels"], ds[(0, 1)]["pixels"])  # the epoch does not matter
    mask = item["masks"][0].numpy() > 0
    rows, cols = np.nonzero(mask)
    assert item["box"].tolist() == [cols.min(), rows.min(), cols.max(), rows.max()]
    assert int(item["kind"]) == 0


def test_click_prompts_fall_inside_and_outside_the_object(cases):
    data = DataConfig(prompts=PromptConfig(box=0.0, points=1.0, max_points=4), augment=AugmentConfig(enabled=False))
    ds = ClipDataset(cases, data, 64, "stretch", seed=0, train=True)
    labels_seen = set()
    for n in range(len(ds)):
        item = ds[(n, 0)]
        assert int(item["kind"]) == 1
        mask = item["masks"][0].numpy() > 0
        labels = item["point_labels"].numpy()
        assert labels[0] == 1
        for (x, y), label in zip(item["points"].numpy().astype(int), labels, strict=True):
            if label >= 0:
                assert mask[y, x] == bool(label)
                labels_seen.add(int(label))
    assert labels_seen == {0, 1}


def test_pad_mode_is_the_litemedsam_engine_input(cases):
    """Without augmentation, a 2D sample's pixels / 255 equal what MedSAMLiteEngine.preprocess makes of the slice."""
    from volsam.engines.medsam_lite.engine import MedSAMLiteEngine

    data = DataConfig(augment=AugmentConfig(enabled=False))
    ds = ClipDataset(cases, data, 256, "pad", seed=0, train=True)
    ref = ds.refs[0]
    frame = prepare_case(cases[ref.case], data).frames[ref.start]
    expected = MedSAMLiteEngine.preprocess(SimpleNamespace(device=torch.device("cpu")), frame[None])[0, 0]
    item = ds[(0, 0)]
    assert torch.allclose(item["pixels"][0] / 255.0, expected, atol=1e-5)
    h, w = item["valid"].tolist()
    assert max(h, w) == 256 and not item["masks"][0, h:].any() and not item["masks"][0, :, w:].any()


def test_other_axes_cut_clips_across_slices(cases):
    data = DataConfig(axis="j")
    prepared = prepare_case(cases[0], data)
    k, j, i = cases[0].load().image.shape
    assert prepared.frames.shape == (j, k, i)


def test_ranks_share_each_global_batch():
    """Two ranks with batch 1 take together exactly the samples one process with batch 2 takes, step by step."""
    one = epoch_batches(11, Dist(0, 1, 0, torch.device("cpu")), 2, 1, seed=5, epoch=3)
    ranks = [epoch_batches(11, Dist(r, 2, r, torch.device("cpu")), 1, 1, seed=5, epoch=3) for r in (0, 1)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 5  # 11 samples: 5 whole steps of 2
    for step, batch in enumerate(one):
        assert sorted(batch) == sorted(ranks[0][step] + ranks[1][step])
    assert one != epoch_batches(11, Dist(0, 1, 0, torch.device("cpu")), 2, 1, seed=5, epoch=4)


def test_learning_rate_schedule():
    assert lr_factor(0, 100, 10, "cosine", 0.0) == pytest.approx(0.1)  # warm-up: (step + 1) / 10
    assert lr_factor(10, 100, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.0) == pytest.approx(0.5)  # half way through the cosine
    assert lr_factor(100, 100, 10, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(70, 100, 0, "constant", 0.0) == 1.0


def test_end_of_object_samples_have_an_empty_truth_and_the_neighbour_box(cases):
    data = DataConfig(
        end_slices=2, prompts=PromptConfig(box_jitter=0.0, points=1.0), augment=AugmentConfig(enabled=False)
    )
    ds = ClipDataset(cases, data, 64, "stretch", seed=0, train=True)
    ends = [(n, ref) for n, ref in enumerate(ds.refs) if ref.prompt_from >= 0]
    assert ends and len(ends) <= 4 * len(cases)
    plain = ClipDataset(cases, DataConfig(clip_stride=1), 64, "stretch", seed=0, train=False)
    for n, ref in ends:
        item = ds[(n, 0)]
        assert not item["masks"].any() and item["present"].tolist() == [0.0] and int(item["kind"]) == 0
        assert abs(ref.start - ref.prompt_from) <= 2
        source = next(
            m
            for m, r in enumerate(plain.refs)
            if (r.case, r.target, r.start) == (ref.case, ref.target, ref.prompt_from)
        )
        assert item["box"].tolist() == plain[source]["box"].tolist()  # the tight box of the object's end slice
    assert all(r.prompt_from < 0 for r in ClipDataset(cases, data, 64, "stretch", seed=0, train=False).refs)


def test_neighbour_box_samples_keep_their_truth_and_take_the_neighbours_box(cases):
    """Each slice holding the object also comes with the tight box of each neighbour holding it (what slice-by-
    slice propagation prompts with); the truth stays the slice's own mask. Validation is unchanged."""
    data = DataConfig(neighbour_boxes=1, prompts=PromptConfig(box_jitter=0.0), augment=AugmentConfig(enabled=False))
    ds = ClipDataset(cases, data, 64, "stretch", seed=0, train=True)
    plain = ClipDataset(cases, DataConfig(clip_stride=1), 64, "stretch", seed=0, train=False)
    at = {(r.case, r.target, r.start): m for m, r in enumerate(plain.refs)}
    near = [(n, ref) for n, ref in enumerate(ds.refs) if ref.prompt_from >= 0]
    targets = {(c, t) for c, t, _ in at}
    assert len(near) == 2 * len(at) - 2 * len(targets)  # both neighbours of every slice but the two end slices
    assert any(plain[at[r.case, r.target, r.start]]["box"].tolist() != ds[(n, 0)]["box"].tolist() for n, r in near)
    for n, ref in near[:12]:
        item, own = ds[(n, 0)], plain[at[ref.case, ref.target, ref.start]]
        assert abs(ref.start - ref.prompt_from) == 1 and int(item["kind"]) == 0
        assert torch.equal(item["masks"], own["masks"]) and item["present"].tolist() == [1.0]
        assert item["box"].tolist() == plain[at[ref.case, ref.target, ref.prompt_from]]["box"].tolist()
    assert all(r.prompt_from < 0 for r in ClipDataset(cases, data, 64, "stretch", seed=0, train=False).refs)
