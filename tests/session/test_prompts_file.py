"""The prompts JSON: a session's prompts saved and run again give the same label map; bad files are refused
with the place of the error."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.session.test_session import _session, _volume
from tests.support.toy_engine import ToyEngine
from volsam.core.errors import InputError, PromptError
from volsam.engines.cache import CachedEngine
from volsam.session import Session
from volsam.session.prompts_file import load_prompts, parse_prompts


def test_saved_prompts_reproduce_the_label_map(tmp_path):
    s, _ = _session()
    a, b = s.add_object(name="A"), s.add_object(5, name="B")
    s.add_box(a, slice=9, box=(6, 8, 20, 18))
    s.add_point(a, (10, 12, 15), positive=False)
    b_mask = np.zeros(s.volume.array.shape, bool)
    b_mask[8, 24:35, 30:45] = True
    s.add_mask(b, b_mask)
    path = s.save_prompts(tmp_path / "prompts.json")
    doc = json.loads(path.read_text())
    assert doc["objects"][0]["prompts"] == [
        {"box": [6, 8, 20, 18], "slice": 9},
        {"point": [10, 12, 15], "positive": False},
    ]
    assert (tmp_path / doc["objects"][1]["prompts"][0]["mask"]).is_file()

    axis, specs = load_prompts(path, s.volume)
    again, _ = _session()
    again.apply(specs)
    assert axis == "k" and again.objects == s.objects
    assert np.array_equal(again.labelmap().array, s.labelmap().array)


def test_queued_prompts_in_a_file_run_once(tmp_path):
    doc = {
        "objects": [
            {
                "label": 2,
                "prompts": [
                    {"box": [6, 8, 20, 18], "slice": 9, "run": False},
                    {"point": [12, 12, 11]},
                ],
            }
        ]
    }
    _, specs = parse_prompts(doc, _volume())
    s, toy = _session()
    s.apply(specs)
    assert s.mask(2)[4:18, 8:19, 6:21].all()
    assert len(s._history._undo) == 2  # adding the object, then one prediction for both prompts


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "JSON object"),
        ({"objects": []}, "non-empty list"),
        ({"objects": [{"prompts": []}]}, r"objects\[0\]: an object needs a label"),
        ({"objects": [{"label": 1, "prompts": [{"box": [1, 2, 3], "slice": 1}]}]}, r"prompts\[0\]\.box"),
        ({"objects": [{"label": 1, "prompts": [{"box": [1, 2, 3, 4]}]}]}, "needs its slice"),
        ({"objects": [{"label": 1, "prompts": [{"point": [1, 2, 3], "colour": "red"}]}]}, "unknown keys"),
        ({"objects": [{"label": 1, "prompts": [{"point": [1, 2, 3], "box3d": [0] * 6}]}]}, "exactly one"),
        ({"objects": [{"label": 1, "prompts": [{"point": [1, 2, "x"]}]}]}, "integers"),
        ({"version": 7, "objects": [{"label": 1, "prompts": [{"point": [1, 2, 3]}]}]}, "version"),
    ],
)
def test_bad_documents_name_the_offending_entry(doc, message):
    with pytest.raises(PromptError, match=message):
        parse_prompts(doc, _volume())


def test_files_that_cannot_be_read_and_masks_off_the_grid(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_prompts(tmp_path / "missing.json", _volume())
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        load_prompts(tmp_path / "bad.json", _volume())
    from volsam.core.volume import Volume
    from volsam.io import write_volume

    write_volume(Volume(np.ones((3, 4, 5), np.uint8)), tmp_path / "small.nii.gz")
    doc = {"objects": [{"label": 1, "prompts": [{"mask": "small.nii.gz"}]}]}
    with pytest.raises(InputError, match="not on the image grid"):
        parse_prompts(doc, _volume(), tmp_path)
    assert Session(_volume(), engine=CachedEngine(ToyEngine()), modality="MR").objects == []
