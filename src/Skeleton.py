"""Skeleton: the 33 MediaPipe pose landmarks of one person in one image, and what we do with them.

A skeleton is a (33, 4) float32 array: x and y normalised to the image (0..1, may leave that range when a joint is
outside the picture), z (depth, in roughly the units of x) and visibility (0..1). Inside a VideoSkeleton dataset the
image is the square crop, so x and y are fractions of the crop side.

The course worked with a reduced skeleton of 13 joints (26 values: x, y of each); nearest-neighbour search and the
joint-vector generator use it. Drawing uses all 33 landmarks, so that a generator that sees the drawing also sees
which way the head, hands and feet point.
"""
import colorsys

import cv2
import numpy as np

NUM_LANDMARKS = 33

# MediaPipe indices of the course's 13 reduced joints.
REDUCED_JOINTS = np.array([0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
REDUCED_JOINT_NAMES = ["nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                       "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]

# Limbs drawn, as pairs of MediaPipe landmark indices. Each gets its own colour, so left and right differ.
LIMBS = [
    (0, 2), (2, 7), (0, 5), (5, 8),              # head: nose to eyes to ears, left then right
    (11, 12), (23, 24), (11, 23), (12, 24),      # torso: shoulders, hips, left flank, right flank
    (11, 13), (13, 15), (15, 19), (15, 17),      # left arm and hand
    (12, 14), (14, 16), (16, 20), (16, 18),      # right arm and hand
    (23, 25), (25, 27), (27, 29), (29, 31),      # left leg and foot
    (24, 26), (26, 28), (28, 30), (30, 32),      # right leg and foot
]
# Hues spread over the colour wheel in limb order, at full saturation: no two limbs share a colour (BGR).
LIMB_COLOURS = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / len(LIMBS), 1.0, 1.0)[::-1])
                for i in range(len(LIMBS))]


class Skeleton:
    full_dim = 3 * NUM_LANDMARKS         # the course's full vector: x, y, z of the 33 landmarks
    reduced_dim = 2 * len(REDUCED_JOINTS)  # the course's reduced vector: x, y of the 13 joints

    def __init__(self, landmarks=None):
        if landmarks is None:
            landmarks = np.zeros((NUM_LANDMARKS, 4), np.float32)
        landmarks = np.asarray(landmarks, np.float32)
        if landmarks.shape != (NUM_LANDMARKS, 4):
            raise ValueError(f"a skeleton is a ({NUM_LANDMARKS}, 4) array, got shape {landmarks.shape}")
        self.landmarks = landmarks

    @classmethod
    def from_mediapipe(cls, pose_landmarks):
        """From the `pose_landmarks` of a MediaPipe Pose result (normalised to the image it was run on)."""
        return cls([(p.x, p.y, p.z, p.visibility) for p in pose_landmarks.landmark])

    def as_vector(self, reduced=False):
        """The course's flat vector: 26 values (x, y of the 13 joints) or 99 (x, y, z of all 33)."""
        if reduced:
            return self.landmarks[REDUCED_JOINTS, :2].reshape(-1).copy()
        return self.landmarks[:, :3].reshape(-1).copy()

    def __array__(self, dtype=None, copy=None, reduced=False):
        vector = self.as_vector(reduced)
        return vector if dtype is None else vector.astype(dtype)

    def distance(self, other):
        """Visibility-weighted mean 2-D distance between the 13 reduced joints (in units of the image side)."""
        return float(pose_distances(self.landmarks, other.landmarks[None])[0])

    def transformed(self, scale, offset):
        """This skeleton with x, y mapped to x * scale + offset (z scaled alike); a new Skeleton."""
        landmarks = self.landmarks.copy()
        landmarks[:, :2] = landmarks[:, :2] * scale + np.asarray(offset, np.float32)
        landmarks[:, 2] *= scale
        return Skeleton(landmarks)

    def draw(self, image, min_visibility=0.0):
        """Draw the limbs on `image` (BGR uint8, any size, changed in place), each limb in its own colour."""
        height, width = image.shape[:2]
        thickness = max(1, round(min(height, width) / 64))
        points = np.round(self.landmarks[:, :2] * (width, height)).astype(np.int32)
        visible = self.landmarks[:, 3] >= min_visibility
        for (a, b), colour in zip(LIMBS, LIMB_COLOURS):
            if visible[a] and visible[b]:
                cv2.line(image, tuple(points[a]), tuple(points[b]), colour, thickness, cv2.LINE_AA)
        return image

    def draw_image(self, size, min_visibility=0.0):
        """A new black size x size image with this skeleton drawn on it: the input of the image generators."""
        return self.draw(np.zeros((size, size, 3), np.uint8), min_visibility)

    def to_list(self):
        """Plain nested lists, for JSON."""
        return self.landmarks.tolist()

    @classmethod
    def from_list(cls, values):
        return cls(np.array(values, np.float32))

    def __repr__(self):
        return f"Skeleton(nose at x={self.landmarks[0, 0]:.3f}, y={self.landmarks[0, 1]:.3f})"


def pose_distances(query, candidates):
    """Distance from one pose to each of N poses, vectorised: an (N,) array.

    `query` is (J, 4) and `candidates` (N, J, 4): the 13 reduced joints (J = 13, as reduced_landmarks gives, which
    a search over many candidates prepares once), or all 33 landmarks (J = 33, reduced here).
    The mean Euclidean distance between the 13 reduced joints in x, y, each joint weighted by how visible it is in
    both skeletons, so that a joint MediaPipe only guessed (behind the body, out of the picture) counts for little.
    """
    return pose_distance_matrix(query[None], candidates)[0]


def pose_distance_matrix(poses, candidates):
    """pose_distances from each of M poses (M, J, 4) to each of N candidates (N, J, 4): an (M, N) array."""
    poses, candidates = reduced_landmarks(poses)[:, None], reduced_landmarks(candidates)[None]
    # hypot on x and y apart: np.linalg.norm over a length-2 axis is ten times slower here
    joint_distances = np.hypot(candidates[..., 0] - poses[..., 0], candidates[..., 1] - poses[..., 1])  # (M, N, 13)
    weights = np.clip(poses[..., 3], 0, 1) * np.clip(candidates[..., 3], 0, 1) + 1e-3  # the floor: all-hidden poses
    return (joint_distances * weights).sum(axis=-1) / weights.sum(axis=-1)


def reduced_landmarks(landmarks):
    """The 13 reduced joints of (..., 33, 4) landmarks; landmarks that are already reduced pass unchanged."""
    return landmarks if landmarks.shape[-2] == len(REDUCED_JOINTS) else landmarks[..., REDUCED_JOINTS, :]


def torso_length(landmarks):
    """The torso's length (mid-shoulder to mid-hip, in x and y) of (..., 33, 4) landmarks: the one measure of a
    person's size in this project (smoothing, retargeting, the appearance memory, Evaluate), because it changes
    little as the arms and legs move."""
    mid_shoulder = landmarks[..., [11, 12], :2].mean(axis=-2)
    mid_hip = landmarks[..., [23, 24], :2].mean(axis=-2)
    return np.linalg.norm(mid_shoulder - mid_hip, axis=-1)


def body_frame(landmarks):
    """Where a video's person stands and how big they are: (median mid-hip point (2,), median torso length).

    `landmarks` is an (N, 33, 4) array of one video's skeletons; the ratio of two videos' torso lengths is the ratio
    of their people's sizes.
    """
    mid_hip = landmarks[:, [23, 24], :2].mean(axis=1)
    return np.median(mid_hip, axis=0), float(np.median(torso_length(landmarks)))


def retarget(skeleton, source_frame, target_frame):
    """Move a source-video skeleton into the target video's space: same place and size as the target person.

    Everybody Dance Now's global pose normalisation, done with the hips and torso: the source's motion around
    its own median position is kept, scaled by the ratio of the two people's torso lengths.
    """
    (source_centre, source_torso), (target_centre, target_torso) = source_frame, target_frame
    scale = target_torso / max(source_torso, 1e-6)
    return skeleton.transformed(scale, target_centre - source_centre * scale)
