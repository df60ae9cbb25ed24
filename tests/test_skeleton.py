"""Skeleton maths and drawing, on synthetic skeletons."""
import json

import numpy as np
import pytest

from Skeleton import LIMB_COLOURS, LIMBS, REDUCED_JOINTS, Skeleton, body_frame, pose_distances, retarget


def random_skeleton(rng, visibility=1.0):
    landmarks = np.zeros((33, 4), np.float32)
    landmarks[:, :3] = rng.uniform(0.2, 0.8, (33, 3))
    landmarks[:, 3] = visibility
    return Skeleton(landmarks)


def test_course_vectors_have_course_sizes_and_order():
    skeleton = random_skeleton(np.random.default_rng(0))
    reduced = skeleton.as_vector(reduced=True)
    assert reduced.shape == (Skeleton.reduced_dim,) == (26,)
    np.testing.assert_array_equal(reduced[2:4], skeleton.landmarks[11, :2])  # second joint: left shoulder
    assert np.asarray(skeleton).shape == (Skeleton.full_dim,) == (99,)
    assert skeleton.__array__(reduced=True).shape == (26,)


def test_distance_is_zero_to_itself_and_equals_a_uniform_shift():
    rng = np.random.default_rng(1)
    skeleton = random_skeleton(rng)
    assert skeleton.distance(skeleton) == pytest.approx(0, abs=1e-7)
    shifted = skeleton.transformed(1.0, (0.03, 0.04))
    assert skeleton.distance(shifted) == pytest.approx(0.05, rel=1e-5)
    assert shifted.distance(skeleton) == pytest.approx(skeleton.distance(shifted))


def test_distance_ignores_joints_the_detector_could_not_see():
    rng = np.random.default_rng(2)
    skeleton = random_skeleton(rng)
    moved = Skeleton(skeleton.landmarks.copy())
    moved.landmarks[REDUCED_JOINTS[5], 0] += 0.5  # a wrist far away ...
    hidden = Skeleton(moved.landmarks.copy())
    hidden.landmarks[REDUCED_JOINTS[5], 3] = 0.0  # ... but invisible
    assert skeleton.distance(moved) == pytest.approx(0.5 / 13, rel=1e-4)
    assert skeleton.distance(hidden) < 0.01 * skeleton.distance(moved)


def test_vectorised_distances_equal_a_plain_loop():
    rng = np.random.default_rng(3)
    query = random_skeleton(rng)
    candidates = [random_skeleton(rng, visibility=rng.uniform(0, 1)) for _ in range(50)]
    vectorised = pose_distances(query.landmarks, np.stack([c.landmarks for c in candidates]))
    for candidate, distance in zip(candidates, vectorised):
        q, c = query.landmarks[REDUCED_JOINTS], candidate.landmarks[REDUCED_JOINTS]
        weights = [qv * cv + 1e-3 for qv, cv in zip(q[:, 3], c[:, 3])]
        plain = sum(w * np.hypot(*(a[:2] - b[:2])) for w, a, b in zip(weights, q, c)) / sum(weights)
        assert distance == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize("size", [32, 64, 256, 700])
def test_drawing_at_any_size_paints_each_limb_in_its_own_colour(size):
    landmarks = np.zeros((33, 4), np.float32)
    landmarks[:, 3] = 1
    # A T-pose: left arm along +x, right arm along -x, torso and legs vertical.
    for index, (x, y) in {0: (0.5, 0.15), 2: (0.53, 0.12), 5: (0.47, 0.12), 7: (0.56, 0.13), 8: (0.44, 0.13),
                          11: (0.6, 0.3), 12: (0.4, 0.3), 13: (0.75, 0.3), 14: (0.25, 0.3), 15: (0.9, 0.3),
                          16: (0.1, 0.3), 17: (0.95, 0.32), 18: (0.05, 0.32), 19: (0.95, 0.3), 20: (0.05, 0.3),
                          23: (0.57, 0.55), 24: (0.43, 0.55), 25: (0.58, 0.72), 26: (0.42, 0.72),
                          27: (0.58, 0.9), 28: (0.42, 0.9), 29: (0.56, 0.93), 30: (0.44, 0.93),
                          31: (0.62, 0.95), 32: (0.38, 0.95)}.items():
        landmarks[index, :2] = (x, y)
    image = Skeleton(landmarks).draw_image(size)
    assert image.shape == (size, size, 3) and image.dtype == np.uint8
    assert len(set(LIMB_COLOURS)) == len(LIMBS)
    left_forearm, right_forearm = LIMBS.index((13, 15)), LIMBS.index((14, 16))
    for limb in (left_forearm, right_forearm):
        a, b = LIMBS[limb]
        middle = np.round((landmarks[a, :2] + landmarks[b, :2]) / 2 * size).astype(int)
        pixel = image[middle[1], middle[0]].astype(float)  # anti-aliased: the nearest colour, not always exact
        nearest = np.argmin([np.linalg.norm(pixel - colour) for colour in LIMB_COLOURS])
        assert nearest == limb
    assert LIMB_COLOURS[left_forearm] != LIMB_COLOURS[right_forearm]


def test_serialisation_round_trip_through_json():
    skeleton = random_skeleton(np.random.default_rng(4))
    again = Skeleton.from_list(json.loads(json.dumps(skeleton.to_list())))
    np.testing.assert_array_equal(again.landmarks, skeleton.landmarks)
    with pytest.raises(ValueError):
        Skeleton(np.zeros((13, 2)))


def test_retarget_moves_the_source_person_onto_the_target_person():
    rng = np.random.default_rng(5)
    source = np.stack([random_skeleton(rng).landmarks for _ in range(20)])
    target = source.copy()
    target[:, :, :2] = source[:, :, :2] * 0.5 + 0.2  # the target person: half the size, elsewhere
    source_frame, target_frame = body_frame(source), body_frame(target)
    assert target_frame[1] == pytest.approx(source_frame[1] * 0.5, rel=1e-5)
    for s, t in zip(source, target):
        np.testing.assert_allclose(retarget(Skeleton(s), source_frame, target_frame).landmarks[:, :2], t[:, :2],
                                   atol=1e-5)
