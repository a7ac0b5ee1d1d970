import numpy as np

from volsam.propagation.appearance import AppearanceModel, surroundings


def _disc(shape=(40, 40), centre=(20, 20), radius=8) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def _frame(mask: np.ndarray, inside: int, outside: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.where(mask, inside, outside) + rng.normal(0, noise, mask.shape)
    return np.clip(f, 0, 255).astype(np.uint8)


def test_surroundings_is_a_ring_outside_the_mask():
    mask = _disc()
    ring = surroundings(mask, 3)
    assert not (ring & mask).any()
    assert ring[20, 20 + 8 + 3] and not ring[20, 20 + 8 + 4]


def test_distinct_object_separates_and_its_pixels_look_like_it():
    mask = _disc()
    model = AppearanceModel(ring_width=3)
    assert not model.ready and model.separability() == 0.0
    model.update(_frame(mask, 200, 80, noise=5), mask)
    assert model.ready and model.separability() > 0.95
    other = _frame(mask, 200, 80, noise=5, seed=1)
    assert model.object_fraction(other, mask) > 0.95
    assert model.object_fraction(other, surroundings(mask, 3)) < 0.05
    # tissue that is neither (grey level 140, seen nowhere) does not count as the object
    assert model.object_fraction(np.full_like(other, 140), mask) == 0.0
    assert np.isnan(model.object_fraction(other, np.zeros_like(mask)))


def test_object_like_its_surroundings_does_not_separate():
    mask = _disc()
    model = AppearanceModel()
    model.update(_frame(mask, 120, 120, noise=5), mask)
    assert model.separability() < 0.3


def test_ring_shaped_object_is_described_by_both_of_its_grey_levels():
    """A bright rim around a dark core in mid-grey tissue: both the rim and the core look like the object."""
    mask = _disc(radius=10)
    core = _disc(radius=6)
    frame = np.where(core, 40, np.where(mask, 230, 130)).astype(np.uint8)
    model = AppearanceModel(ring_width=3)
    model.update(frame, mask)
    assert model.separability() > 0.95
    assert model.object_fraction(frame, core) == 1.0
    assert model.object_fraction(frame, mask & ~core) == 1.0
