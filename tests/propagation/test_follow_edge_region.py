"""The video walk takes the object-like region where a lost object left the view when the model's answer to it
is refused (``search_edge_region``). The stand-in "model" outlines its whole box, grey tissue included, when
the box reaches the frame's last column, as LiteMedSAM answered an object half back in view."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tests.propagation.test_follow import _leaving  # the 12 px square that leaves and comes back
from tests.support.toy_engine import ToyEngine
from volsam.propagation import FrameStack, PropagationSettings
from volsam.propagation.follow import follow

H, W = 40, 120
VIDEO = replace(PropagationSettings.video(), appearance_smooth=0.0, regrow_px=0, temporal_reach=0)


class _EdgeShy(ToyEngine):
    """The bright pixels in the box; a box reaching the last column gets the whole box (mostly dark)."""

    def predict(self, embedding, box=None, points=None, point_labels=None, mask_logits=None):
        pred = super().predict(embedding, box=box, points=points, point_labels=point_labels)
        if box is not None and box[2] >= W - 1:
            x0, y0, x1, y1 = (int(round(c)) for c in box)
            pred.mask[max(y0 - 6, 0) : y1 + 7, max(x0 - 12, 0) : x1 + 1] = True  # and the grey beside it
        return pred


def _dices(settings: PropagationSettings) -> list[float]:
    truth = _leaving()
    rng = np.random.default_rng(0)
    frames = (np.where(truth, 200, 40) + rng.integers(0, 20, truth.shape)).astype(np.uint8)
    stack = FrameStack(frames, 2, lambda f: f)
    got = {r.index: r.mask for r in follow(_EdgeShy(), stack, 0, box=(60, 14, 71, 25), settings=settings)}
    out = []
    for t in range(len(truth)):
        m = got.get(t, np.zeros((H, W), bool))
        total = m.sum() + truth[t].sum()
        out.append(1.0 if total == 0 else float(2 * (m & truth[t]).sum() / total))
    return out


def test_the_region_where_it_left_is_taken_when_the_models_answer_is_refused():
    truth = _leaving()
    assert truth[12].sum() == 72 and not truth[7:12].any()
    taken = _dices(VIDEO)
    refused = _dices(replace(VIDEO, search_edge_region=False))
    assert taken[7:12] == [1.0] * 5 and refused[7:12] == [1.0] * 5  # nothing while it is away
    assert taken[12] == 1.0, np.round(taken, 2)  # half back in view: its object-like region
    assert refused[12] == 0.0, np.round(refused, 2)  # the model's answer (mostly grey) is refused
    assert min(taken[13:]) > 0.9 and min(refused[13:]) > 0.9  # both follow it once wholly in view
