"""``auto`` by measurement: the timing rule, the pick, the per-host record, and LiteMedSAM's engine using it."""

from __future__ import annotations

import json
import logging
import time

import pytest

from volsam.engines import backends
from volsam.engines.backends import choice
from volsam.engines.backends.choice import choose, host_signature, measure, pick


def _sleeper(seconds: float, calls: list[str], name: str):
    def run() -> None:
        calls.append(name)
        time.sleep(seconds)

    return run


def test_measure_warms_up_then_alternates_the_order_and_takes_medians():
    calls: list[str] = []
    seconds = measure({"torch": _sleeper(0.05, calls, "torch"), "openvino": _sleeper(0.0, calls, "openvino")}, 3)
    # warm-up (torch, openvino), then rounds in the order t o | o t | t o
    assert calls == ["torch", "openvino", "torch", "openvino", "openvino", "torch", "torch", "openvino"]
    assert seconds["torch"] >= 0.05 > seconds["openvino"]
    with pytest.raises(ValueError, match="rounds"):
        measure({"torch": lambda: None}, 0)


def test_pick_keeps_the_reference_unless_another_is_clearly_faster():
    assert pick({"torch": 1.0, "openvino": 0.90}) == "openvino"
    assert pick({"torch": 1.0, "openvino": 0.97}) == "torch"  # within the 5 % margin: noise
    assert pick({"torch": 1.0, "openvino": 1.30}) == "torch"
    assert pick({"torch": 1.0, "openvino": 0.97}, margin=0.0) == "openvino"


def test_a_choice_is_measured_once_per_model_and_host_and_kept(tmp_path, caplog):
    path = tmp_path / "c" / "choices.json"
    calls: list[str] = []
    runs = {"torch": _sleeper(0.05, calls, "torch"), "openvino": _sleeper(0.0, calls, "openvino")}
    with caplog.at_level(logging.INFO, logger="volsam.engines.backends.choice"):
        assert choose("enc-abc", "hostA", runs, rounds=3, path=path) == "openvino"
    assert "measured on this host" in caplog.text
    record = json.loads(path.read_text())["enc-abc|hostA"]
    assert record["reference"] == "torch" and list(record["seconds"]) == ["torch", "openvino"]
    assert record["choice"] == "openvino" and record["seconds"]["torch"] >= 0.05 and record["rounds"] == 3

    def refuse() -> None:
        raise AssertionError("a kept choice must not be measured again")

    assert choose("enc-abc", "hostA", {"torch": refuse, "openvino": refuse}, path=path) == "openvino"
    # another host (or other weights) is measured on its own, and both answers are kept
    slow_ov = {"torch": _sleeper(0.0, calls, "torch"), "openvino": _sleeper(0.05, calls, "openvino")}
    assert choose("enc-abc", "hostB", slow_ov, rounds=3, path=path) == "torch"
    assert set(json.loads(path.read_text())) == {"enc-abc|hostA", "enc-abc|hostB"}


def test_a_damaged_or_unwritable_record_costs_only_a_measurement(tmp_path, caplog):
    path = tmp_path / "choices.json"
    path.write_text("{not json")
    runs = {"torch": lambda: None, "openvino": lambda: time.sleep(0.05)}
    with caplog.at_level(logging.WARNING, logger="volsam.engines.backends.choice"):
        assert choose("m", "h", runs, rounds=1, path=path) == "torch"
    assert "cannot read" in caplog.text
    assert json.loads(path.read_text())["m|h"]["choice"] == "torch"  # replaced by a good record
    blocked = tmp_path / "file"
    blocked.write_text("")
    with caplog.at_level(logging.WARNING, logger="volsam.engines.backends.choice"):
        assert choose("m", "h", runs, rounds=1, path=blocked / "choices.json") == "torch"
    assert "measured on each run" in caplog.text


def test_the_host_signature_names_the_cpu_threads_and_versions():
    sig = host_signature(3, {"torch": "2.x", "openvino": "2026.y"})
    assert "threads=3" in sig and "openvino=2026.y,torch=2.x" in sig and "cpus=" in sig
    assert host_signature(3, {"torch": "2.x"}) != host_signature(4, {"torch": "2.x"})


@pytest.mark.skipif(not backends.openvino_available(), reason="openvino is not installed")
def test_litemedsam_auto_runs_what_was_measured_faster_here(monkeypatch, tmp_path):
    """Real weights: ``auto`` measures torch and OpenVINO once on this host, runs the backend the record names,
    and a second engine reads the record instead of timing again."""
    from volsam.engines.medsam_lite.engine import MedSAMLiteEngine

    path = tmp_path / "choices.json"
    monkeypatch.setattr(choice, "choices_path", lambda: path)
    engine = MedSAMLiteEngine(device="cpu", precision="fp32", backend="auto")
    (record,) = json.loads(path.read_text()).values()
    seconds = record["seconds"]
    assert set(seconds) == {"torch", "openvino"} and record["reference"] == "torch"
    in_order = {"torch": seconds["torch"], "openvino": seconds["openvino"]}  # torch is the reference: first
    assert engine.backend == record["choice"] == pick(in_order, record["margin"])
    assert (engine._encoder is None) == (engine.backend == "torch")

    monkeypatch.setattr(choice, "measure", lambda *a, **k: pytest.fail("measured again"))
    again = MedSAMLiteEngine(device="cpu", precision="fp32", backend="auto")
    assert again.backend == engine.backend
    # an explicit backend is never overruled by the record
    forced = "torch" if engine.backend == "openvino" else "openvino"
    assert MedSAMLiteEngine(device="cpu", precision="fp32", backend=forced).backend == forced
