"""GenNearest: vectorised search equal to brute force; real frames from the real sample."""
import numpy as np

from GenNearest import GenNearest
from Skeleton import Skeleton


class FakeVideo:
    """Stands in for a VideoSkeleton: random skeletons, images that say which frame they are."""
    crop_size = 8

    def __init__(self, count, rng):
        self.landmarks = rng.uniform(0, 1, (count, 33, 4)).astype(np.float32)
        self.frame_index = np.arange(count)
        self.reads = []

    def skeCount(self):
        return len(self.landmarks)

    def readImage(self, i):
        self.reads.append(i)
        return np.full((8, 8, 3), i, np.uint8)


def test_nearest_equals_brute_force_over_skeleton_distance():
    rng = np.random.default_rng(0)
    video = FakeVideo(200, rng)
    generator = GenNearest(video)
    for _ in range(30):
        query = Skeleton(rng.uniform(0, 1, (33, 4)))
        brute = min(range(video.skeCount()), key=lambda i: query.distance(Skeleton(video.landmarks[i])))
        assert generator.nearest(query)[0] == brute
        assert generator.generate(query)[0, 0, 0] == brute


def test_nearest_searches_only_the_frames_it_is_given_and_reads_each_image_once():
    rng = np.random.default_rng(1)
    video = FakeVideo(50, rng)
    allowed = np.arange(0, 50, 2)
    generator = GenNearest(video, indices=allowed)
    for i in range(1, 50, 2):  # the exact pose of an odd frame: the answer must still be an even one
        generator.generate(Skeleton(video.landmarks[i]))
        assert generator.nearest(Skeleton(video.landmarks[i]))[0] in allowed
    assert len(video.reads) == len(set(video.reads))


def test_each_real_frame_finds_itself(sample_target):
    generator = GenNearest(sample_target)
    for i in range(0, sample_target.skeCount(), 7):
        index, distance = generator.nearest(sample_target.ske[i])
        assert index == i and distance < 1e-6
        np.testing.assert_array_equal(generator.generate(sample_target.ske[i]), sample_target.readImage(i))
