"""What the image generators are given: pose encodings, the augmentation that moves pose and picture together, and
the appearance memory (synthetic cases with known answers, then real sample frames)."""
import warnings

import cv2
import numpy as np
import pytest
import torch

import AppearanceMemory as AppearanceMemory_module
import PoseEncoding
from AppearanceMemory import AppearanceMemory, background_plate, nan_median, normalised
from BodyParts import HEAD, MID_HIP, MID_SHOULDER, part_affines, part_masks, segment_affine, warp_person, with_middles
from Measures import sharpnesses
from Networks import ComposeWithMemory
from Skeleton import LIMBS, REDUCED_JOINTS, Skeleton, pose_distances
from VideoSkeleton import CropCache, split_indices


def standing(x=0.5, y=0.5, scale=1.0, z_left=0.0, z_right=0.0):
    """A hand-made upright skeleton, mid-hip at (x, y), torso 0.2 * scale long; every landmark fully visible."""
    landmarks = np.zeros((33, 4), np.float32)
    landmarks[:, 3] = 1
    offsets = {0: (0, -0.3), 2: (-0.02, -0.31), 5: (0.02, -0.31), 7: (-0.04, -0.3), 8: (0.04, -0.3),
               11: (-0.07, -0.2), 12: (0.07, -0.2), 13: (-0.1, -0.1), 14: (0.1, -0.1), 15: (-0.11, 0.0),
               16: (0.11, 0.0), 17: (-0.11, 0.02), 18: (0.11, 0.02), 19: (-0.12, 0.02), 20: (0.12, 0.02),
               23: (-0.05, 0), 24: (0.05, 0), 25: (-0.06, 0.15), 26: (0.06, 0.15), 27: (-0.06, 0.3),
               28: (0.06, 0.3), 29: (-0.07, 0.32), 30: (0.07, 0.32), 31: (-0.03, 0.32), 32: (0.03, 0.32)}
    for index, (dx, dy) in offsets.items():
        landmarks[index, :2] = (x + dx * scale, y + dy * scale)
    landmarks[[11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31], 2] = z_left
    landmarks[[12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32], 2] = z_right
    return Skeleton(landmarks)


class ArrayCrops:
    """Stands in for a VideoSkeleton.CropCache: the pictures of a memory from arrays."""

    def __init__(self, images, masks):
        self.images, self.masks, self.size = images, masks, images.shape[1]

    def image(self, i):
        return self.images[i]

    def mask(self, i):
        return self.masks[i]


def test_limb_encoding_gives_each_limb_its_channel_and_puts_the_nearer_limb_on_top():
    skeleton = standing(z_left=-0.3, z_right=0.3)  # the left side nearer the camera
    maps = PoseEncoding.render(skeleton, 64)
    assert maps.shape == (PoseEncoding.CHANNELS, 64, 64) == (len(LIMBS) + 1, 64, 64)
    for channel, (a, b) in enumerate(LIMBS):
        middle = np.round((skeleton.landmarks[a, :2] + skeleton.landmarks[b, :2]) / 2 * 64).astype(int)
        assert maps[channel, middle[1], middle[0]] > 100, (channel, a, b)  # lit on its own limb ...
    left_shin, right_shin = LIMBS.index((25, 27)), LIMBS.index((26, 28))
    assert maps[left_shin][maps[right_shin] > 0].max() == 0  # ... and nowhere on a limb far from it
    depth = maps[-1]
    assert depth[maps[left_shin] > 200].mean() > depth[maps[right_shin] > 200].mean() + 50  # nearer is brighter
    assert PoseEncoding.picture(maps).shape == (64, 64, 3)


def test_augmentation_moves_pose_image_and_memory_together():
    torch.manual_seed(0)
    dots = torch.zeros(8, 3, 64, 64, dtype=torch.uint8)
    dots[:, :, 28:36, 20:28] = 255  # the same square in every picture
    batch = {"skeleton": dots.clone(), "image": dots.clone(), "memory": dots.clone(), "vector": torch.zeros(8, 26)}
    out = PoseEncoding.augment(batch, torch.Generator().manual_seed(1))
    assert out["skeleton"].shape == (8, 3, 64, 64) and torch.equal(out["vector"], batch["vector"])
    assert torch.allclose(out["skeleton"], out["image"], atol=1e-3)  # black borders: padding alike
    assert torch.allclose(out["image"], out["memory"], atol=1e-3)
    moved = (out["image"] - dots.float()).abs().flatten(1).amax(1)
    assert (moved > 50).float().mean() >= 0.75  # each sample drawn anew: almost all moved
    assert not torch.allclose(out["image"][0], out["image"][1])


def test_segment_affine_maps_the_segment_onto_the_target_segment():
    affine = segment_affine(np.array([10.0, 10]), np.array([10.0, 30]), np.array([50.0, 50]), np.array([70.0, 50]), 1.0)
    moved = affine[:, :2] @ np.array([[10.0, 10], [10, 30], [12, 10]]).T + affine[:, 2:]
    assert moved.T == pytest.approx(np.array([[50, 50], [70, 50], [50, 48]]), abs=1e-4)  # turned 90 degrees


def test_warping_to_the_same_pose_keeps_the_person_and_lays_it_on_the_background():
    skeleton = standing()
    image, everywhere = np.full((64, 64, 3), 200, np.uint8), np.ones((64, 64), np.float32)
    background = np.zeros_like(image)
    warped = warp_person(image, skeleton.landmarks, skeleton.landmarks, everywhere, background)
    hip = np.round(skeleton.landmarks[23, :2] * 64).astype(int)
    assert warped[hip[1], hip[0]].tolist() == [200, 200, 200]
    assert warped[2, 2].tolist() == [0, 0, 0] and warped[60, 60].tolist() == [0, 0, 0]
    # Moved: the same person standing elsewhere and larger lands where the new pose is.
    elsewhere = standing(x=0.35, y=0.45, scale=1.3)
    warped = warp_person(image, skeleton.landmarks, elsewhere.landmarks, everywhere, background)
    hip = np.round(elsewhere.landmarks[23, :2] * 64).astype(int)
    assert warped[hip[1], hip[0]].min() > 150
    # Only the person's pixels move: where the mask says background, the plate shows through.
    nowhere = np.zeros_like(everywhere)
    assert not warp_person(image, skeleton.landmarks, elsewhere.landmarks, nowhere, background).any()


def test_memory_finds_the_like_pose_that_stood_there_and_never_a_frame_too_near_in_time():
    poses = np.stack([standing(x=0.3 + 0.01 * i).landmarks for i in range(30)])
    poses[10, 15, :2] += (0.2, -0.1)  # frame 10 raises its left wrist: a shape of its own
    images, masks = np.zeros((30, 32, 32, 3), np.uint8), np.zeros((30, 32, 32), np.uint8)
    memory = AppearanceMemory(poses, np.arange(30), 5, ArrayCrops(images, masks), np.arange(30))
    query = standing(x=0.4).landmarks  # where frame 10 stood, with its raised wrist
    query[15, :2] += (0.2, -0.1)
    assert memory.nearest(query) == 10
    assert abs(memory.nearest(query, frame=10) - 10) >= 5
    assert memory.nearest(standing(x=0.58).landmarks) == 28  # without the wrist: the frame that stood there
    assert normalised(poses[:1])[0, 23:25, :2].mean(0) == pytest.approx([0, 0], abs=1e-6)


def walking_person(count=30, size=64):
    """A person (green, cut exactly by its mask) crossing a still background (a red gradient) from left to right."""
    background = np.zeros((size, size, 3), np.uint8)
    background[:, :, 2] = 100 + np.arange(size)[None] * 2
    poses = np.stack([standing(x=0.25 + 0.5 * i / (count - 1)).landmarks for i in range(count)])
    images, masks = np.repeat(background[None], count, 0), np.zeros((count, size, size), np.uint8)
    for i, pose in enumerate(poses):
        masks[i] = (np.max(part_masks(pose, size), axis=0) > 0.5) * 255
        images[i][masks[i] > 0] = (0, 255, 0)
    return background, poses, images, masks


def test_plate_memory_lays_the_person_on_the_clean_background_with_no_ghost():
    background, poses, images, masks = walking_person()
    plate = background_plate(images, masks > 0)
    seen = ~np.isnan(plate).any(-1)
    assert seen.mean() > 0.9 and np.abs(plate[seen] - background[seen]).max() <= 1  # the median is the background
    memory = AppearanceMemory(poses, np.arange(30), 5, ArrayCrops(images, masks), np.arange(30), fps=10)
    assert np.abs(memory.plate(0).astype(int) - background).max() <= 1  # holes filled in from the whole video
    query = standing(x=0.7).landmarks
    chosen = memory.nearest(query)
    assert abs(poses[chosen][23, 0] - 0.65) < 0.05  # placement counts: the person who stood there is remembered
    picture = memory.recall(query, frame=chosen)  # not that frame itself, nor one within `gap` of it
    hip, old_hip = np.round(query[23, :2] * 64).astype(int), np.round(poses[0][23, :2] * 64).astype(int)
    assert picture[hip[1], hip[0]].tolist() == [0, 255, 0]  # the person where the pose is ...
    assert np.abs(picture[old_hip[1], old_hip[0]].astype(int) - background[old_hip[1], old_hip[0]]).max() <= 1
    assert np.abs(picture[2, 2].astype(int) - background[2, 2]).max() <= 1  # ... and the background elsewhere


def test_a_plate_shows_its_moment_s_view_and_fills_its_holes_from_frames_of_that_view():
    """A camera that cuts to another view (a brighter wall) for the last 1.5 seconds. The person stands at the left
    for 3.5 seconds, walks right, and stands there after the cut. A plate from before the cut shows the first view,
    the wall behind where the person stood taken from the frames after she left (the mark no inpainting could
    guess); a plate after the cut shows the second view alone, never the first view's frames of its window."""
    size, count, fps = 64, 60, 10
    first = np.zeros((size, size, 3), np.uint8)
    first[..., 1] = 60 + np.arange(size)[:, None]  # a gentle vertical gradient
    first[30:34, 17:21, 0] = 250  # a mark behind where the person stands first
    second = first.copy()
    second[..., 2] = 60  # the view after the cut
    second[30:34, 17:21, 0] = 0
    where = np.r_[np.full(35, 0.3), np.linspace(0.3, 0.75, 10), np.full(15, 0.75)]
    poses = np.stack([standing(x=x).landmarks for x in where])
    images = np.stack([first if i < 45 else second for i in range(count)])
    masks = np.stack([(np.max(part_masks(pose, size), axis=0) > 0.5) * 255 for pose in poses]).astype(np.uint8)
    images[masks > 0] = (0, 255, 0)
    memory = AppearanceMemory(poses, np.arange(count), 3, ArrayCrops(images, masks), np.arange(count), fps=fps)
    before = memory.plate(0).astype(int)
    assert np.abs(before[30:34, 17:21] - first[30:34, 17:21]).max() <= 1  # the mark, seen after she left
    assert np.abs(before - first).max() <= 2  # (a few pixels her hand hid until she was gone: inpainted)
    after = memory.plate(57).astype(int)
    stood = cv2.dilate(masks[57], np.ones((3, 3), np.uint8), iterations=2) > 32  # the person, grown as for the plate
    assert np.abs(after[~stood] - second[~stood]).max() <= 1
    assert np.abs(after - second).max() <= 12  # where the person stood throughout: inpainted from around it


def test_a_plate_after_a_cut_shows_the_new_view_alone_on_real_frames(sample_target):
    """On the sample's real frames, spliced into a cut: from frame 60 on, the same room seen in a mirror (another
    view). A plate after the cut matches its frame's own background; a median of all the frames of a 3-second window
    would be mostly of the view before the cut."""
    crops, cut = CropCache(sample_target, 128), 60
    count = sample_target.skeCount()
    mirrored = lambda picture, i: picture[:, ::-1] if i >= cut else picture  # noqa: E731
    images = np.stack([mirrored(crops.image(i), i) for i in range(count)])
    masks = np.stack([mirrored(crops.mask(i), i) for i in range(count)])
    landmarks = sample_target.landmarks.copy()
    landmarks[cut:, :, 0] = 1 - landmarks[cut:, :, 0]
    memory = AppearanceMemory(landmarks, sample_target.frame_index, 10, ArrayCrops(images, masks), np.arange(count),
                              fps=sample_target.fps)
    differences = []
    for index in (cut - 25, cut + 20, cut + 35):  # (the plate whose half-second holds the cut is of both views)
        background = cv2.dilate(masks[index], np.ones((3, 3), np.uint8), iterations=3) < 32
        differences.append(np.abs(memory.plate(index).astype(float) - images[index])[background].mean())
    assert max(differences) < 6, differences


def test_the_plate_median_gives_numpy_s_numbers():
    """nan_median is np.nanmedian over the frames, NaN (the person) left out, for odd and even counts of known
    values, and NaN where no frame saw the background."""
    rng = np.random.default_rng(0)
    stack = rng.uniform(0, 255, (12, 16, 16, 3)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 0, 0] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels
        expected = np.nanmedian(stack, axis=0)
    np.testing.assert_array_equal(nan_median(stack), expected)


def test_the_plate_follows_where_the_person_stands_not_the_remembered_frame():
    """A camera that cuts to a closer view halfway: far, the person is small on a red wall; near, larger on a blue
    one. A near pose remembered from a far frame lies on the blue plate, where a person of that size stood."""
    size, count = 64, 30
    far, near = np.zeros((size, size, 3), np.uint8), np.zeros((size, size, 3), np.uint8)
    far[..., 2], near[..., 0] = 200, 200
    poses = np.stack([standing(x=0.5 + 0.002 * i, scale=0.8 if i < 15 else 1.2).landmarks for i in range(count)])
    images = np.stack([far if i < 15 else near for i in range(count)])
    masks = np.stack([(np.max(part_masks(pose, size), axis=0) > 0.5) * 255 for pose in poses]).astype(np.uint8)
    images[masks > 0] = (0, 255, 0)
    query = standing(x=0.56, scale=1.2).landmarks
    hip = np.round(query[23, :2] * size).astype(int)
    memory = AppearanceMemory(poses, np.arange(count), 3, ArrayCrops(images, masks), np.arange(count), fps=1)
    picture = memory.recall_many([query], chosen=[5])[0].permute(1, 2, 0).numpy()
    assert np.abs(picture[2, 2].astype(int) - near[2, 2]).max() <= 1
    assert picture[hip[1], hip[0]].tolist() == [0, 255, 0]  # the remembered person, in the pose asked for
    assert memory.plate_index(query) == 29 and memory.plate_index(query, frame=29) == 26  # none within gap=3
    # Over a sequence that cuts from far to near, a person swaying between plates of the same framing: the plate
    # chosen pose by pose flickers, the plates chosen together change once, at the cut.
    rng = np.random.default_rng(0)
    queries = [standing(x=0.53 + rng.normal(0, 0.01), scale=0.8 if t < 10 else 1.2).landmarks for t in range(20)]
    alone, together = [memory.plate_index(q) for q in queries], np.array(memory.coherent_plates(queries))
    changes = lambda plates: int(np.sum(np.diff(memory.plate_numbers[plates]) != 0))  # noqa: E731
    assert changes(together) == 1 < changes(alone)
    assert (together[:10] < 15).all() and (together[10:] >= 15).all()


def test_memory_chosen_over_a_sequence_changes_less_often_than_pose_by_pose():
    _, poses, images, masks = walking_person(count=40)
    memory = AppearanceMemory(poses, np.arange(40), 3, ArrayCrops(images, masks), np.arange(40), fps=10)
    rng = np.random.default_rng(0)
    queries = poses[5:35] + rng.normal(0, 0.03, poses[5:35].shape).astype(np.float32) * [1, 1, 0, 0]
    alone = [memory.nearest(q) for q in queries]
    together = memory.coherent_choice(queries)
    changes = lambda chosen: sum(not 0 <= b - a <= 2 for a, b in zip(chosen, chosen[1:]))  # noqa: E731
    assert changes(together) < changes(alone)
    assert np.mean([abs(c - q) for c, q in zip(together, range(5, 35))]) < 3  # and still the right frames


def test_the_memory_keeps_frames_cut_into_parts_and_draws_the_same_picture_from_them(monkeypatch):
    """A frame's parts are cut once and reused (a run of poses shows one frame); the picture is the one
    warp_person() draws from the uncut frame, and only the CUT_FRAMES_KEPT most recent frames are kept."""
    background, poses, images, masks = walking_person()
    images[:, 20:30, 28:36] = (255, 255, 255)  # a texture to move
    memory = AppearanceMemory(poses, np.arange(30), 5, ArrayCrops(images, masks), np.arange(30), fps=10)
    monkeypatch.setattr(AppearanceMemory_module, "CUT_FRAMES_KEPT", 4)
    query = standing(x=0.45, y=0.52, scale=1.1).landmarks
    for index in (3, 7, 3, 11, 12, 13, 14):
        plate = memory.plate(index)
        drawn = memory.picture(index, query, index, index)
        cut_afresh = warp_person(images[index], poses[index], query, masks[index] / 255.0, plate)
        assert np.abs(drawn.astype(int) - cut_afresh).max() <= 1  # the same up to an interpolation's rounding
    assert list(memory.cut) == [11, 12, 13, 14]


def test_the_head_comes_from_a_frame_whose_face_turns_the_same_way():
    """A person crossing the picture, facing left (a blue head) in frames 0-14 and right (red) in 15-29: a pose
    facing right where frame 5 stood takes its body from a frame near 5 and its head from one facing right."""
    _, poses, images, masks = walking_person()
    for i, pose in enumerate(poses):
        pose[0, 0] += 0.05 if i >= 15 else -0.05  # the nose: turned right or left of the eyes and ears
        head = (part_masks(pose, 64)[HEAD] > 0.5) & (masks[i] > 0)
        images[i][head] = (0, 0, 255) if i >= 15 else (255, 0, 0)
    memory = AppearanceMemory(poses, np.arange(30), 5, ArrayCrops(images, masks), np.arange(30), fps=10)
    query = poses[5].copy()
    query[0, 0] += 0.1  # facing right
    assert memory.nearest(query) < 15 and memory.nearest_head(query) >= 15
    assert abs(memory.nearest_head(query, frame=20) - 20) >= 5  # never a frame within `gap` of a training frame
    picture = memory.recall(query)
    joints = with_middles(query)[:, :2] * 64
    crown, belly = [np.round(p).astype(int) for p in (joints[MID_SHOULDER] + 0.9 * (joints[0] - joints[MID_SHOULDER]),
                                                      (joints[MID_SHOULDER] + joints[MID_HIP]) / 2)]
    assert picture[crown[1], crown[0]].tolist() == [0, 0, 255]  # the head of a frame facing right
    assert picture[belly[1], belly[0]].tolist() == [0, 255, 0]  # on the body of the frame that stood there
    # Over a sequence the heads are chosen together, as the bodies are.
    assert all(h >= 15 for h in memory.coherent_heads([query] * 3))


def test_warped_memory_lands_on_the_pose_asked_for_on_real_frames(sample_target):
    """On real sample frames: the training frame least like a held-out pose, moved part by part to that pose, covers
    its joints; the same person left where it stood does not."""
    train, held_out = split_indices(sample_target.skeCount(), 0.2)
    memory = AppearanceMemory.from_video(sample_target, train, CropCache(sample_target, 64))
    moved_cover, unmoved_cover = [], []
    for index in held_out[::4]:
        landmarks = sample_target.landmarks[index]
        far = int(np.argmax(pose_distances(landmarks, memory.landmarks)))
        image, own_pose, mask = memory.image(far), memory.landmarks[far], memory.mask(far) / 255.0
        joints = np.clip(np.round(landmarks[REDUCED_JOINTS, :2] * 64).astype(int), 0, 63)
        for pose, cover in ((landmarks, moved_cover), (own_pose, unmoved_cover)):
            warped = warp_person(image, own_pose, pose, mask, np.zeros_like(image))
            cover.append((warped[joints[:, 1], joints[:, 0]].sum(1) > 0).mean())
    assert np.mean(moved_cover) > 0.9 and np.mean(moved_cover) > np.mean(unmoved_cover) + 0.2, \
        (moved_cover, unmoved_cover)


def test_a_part_moved_by_a_fraction_of_a_pixel_keeps_its_texture_on_real_frames(sample_target):
    """On real sample frames at 256 px: the person moved half a pixel keeps most of the sharpness (variance of the
    Laplacian in the person's box, on a flat grey) of the person left where it stood; averaging neighbours, as
    bilinear interpolation does, keeps about 0.6 of it."""
    crops = CropCache(sample_target, 256)
    _, held_out = split_indices(sample_target.skeCount(), 0.2)
    ratios = []
    for index in held_out[::4]:
        image, landmarks, mask = crops.image(index), sample_target.landmarks[index], crops.mask(index) / 255.0
        grey = np.full_like(image, 128)
        moved = landmarks.copy()
        moved[:, :2] += 0.5 / 256
        box = moved[REDUCED_JOINTS, :2]
        still, shifted = (warp_person(image, landmarks, pose, mask, grey) for pose in (landmarks, moved))
        ratios.append(sharpnesses([shifted], [box], 256)[0] / sharpnesses([still], [box], 256)[0])
    assert np.mean(ratios) > 0.75, ratios


def test_a_nose_detected_a_few_pixels_off_does_not_swing_the_head_on_real_frames(sample_target):
    """On real sample frames at 256 px (a man looking down at a beam, his nose just above his shoulders): the nose
    alone moved 3 px sideways, as a detection wobbles, moves the crown of the head by little more; turned about the
    neck to point at the nose, a line a few pixels long, the head would swing about 10 px on average, up to 17."""
    crown_moves = []
    for landmarks in sample_target.landmarks[::5]:
        wobbled = landmarks.copy()
        wobbled[0, 0] += 3 / 256
        joints = with_middles(landmarks)[:, :2] * 256
        up = joints[MID_SHOULDER] - joints[MID_HIP]  # a torso length, from the hips to the shoulders
        crown = joints[1:11].mean(0) + 0.4 * up  # above the eyes
        head = part_affines(landmarks, wobbled, 256)[HEAD]
        crown_moves.append(np.linalg.norm(head[:, :2] @ crown + head[:, 2] - crown))
    assert np.mean(crown_moves) < 6, crown_moves


def test_a_part_is_moved_once_not_also_with_the_torso_on_real_frames(sample_target):
    """On real sample frames at 256 px, each frame's person moved to the pose of the frame 10 later: little of it
    lands outside that frame's own person (its segmentation grown 4 px). A capsule cut out of the torso would also
    carry the head or an arm held near the body, and lay it where the torso goes beside where that part goes."""
    crops = CropCache(sample_target, 256)
    outside = []
    for index in range(0, sample_target.skeCount() - 10, 2):
        later = index + 10
        image, mask = crops.image(index), crops.mask(index) / 255.0
        warped = warp_person(image, sample_target.landmarks[index], sample_target.landmarks[later], mask,
                             np.zeros_like(image))
        person = warped.max(-1) > 0
        there = cv2.dilate((crops.mask(later) > 64).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        outside.append((person & ~there).sum() / max(person.sum(), 1))
    assert np.mean(outside) < 0.04, np.mean(outside)


def test_composition_copies_the_memory_where_the_mask_says_and_draws_elsewhere():
    class Fixed(torch.nn.Module):  # draws grey 0.2 everywhere; its mask trusts the memory on the left half only
        def forward(self, x):
            out = torch.full((x.size(0), 4, 8, 8), 0.2)
            out[:, 3] = -1
            out[:, 3, :, :4] = 1
            return out

    pose_and_memory = torch.cat([torch.zeros(2, 25, 8, 8), torch.full((2, 3, 8, 8), -0.7)], 1)
    out = ComposeWithMemory(Fixed())(pose_and_memory)
    assert out.shape == (2, 3, 8, 8)
    assert torch.allclose(out[..., :4], torch.tensor(-0.7)) and torch.allclose(out[..., 4:], torch.tensor(0.2))
