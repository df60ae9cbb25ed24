"""Detection: MediaPipe Pose, wrapped for this project's two uses.

- PoseDetector: one pass over a video's frames in order (tracking the person from frame to frame), the pose and,
  if asked, the person's segmentation mask; preprocessing (Preprocess.py) uses it.
- Redetector: each picture alone, enlarged and padded, to check that a generated (or real) crop shows a person in
  the pose asked for; Evaluate.py and the trainers' per-epoch scores use it alike.
"""
import os

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: warnings and info lines off
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from Skeleton import REDUCED_JOINTS, Skeleton  # noqa: E402


class PoseDetector:
    """MediaPipe Pose for one pass over a video: call it on BGR frames in order; use as a context manager.

    model_complexity=1 is the model the 0.10.21 wheel ships. static_image_mode=False makes it track the person
    from one frame to the next, so one detector must see one video's frames in order. segment=True also computes
    the person's segmentation mask, for detect_with_mask().
    """

    def __init__(self, consecutive=True, static=False, segment=False):
        import mediapipe as mp  # here, so that loading a cached dataset does not pay for importing MediaPipe

        # Smoothing across frames helps when frames are consecutive and lags when they are far apart. static=True
        # detects every image afresh (no tracking), for images that are not a video's frames in order.
        self.pose = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1,
                                           smooth_landmarks=consecutive and not static,
                                           enable_segmentation=segment, smooth_segmentation=consecutive,
                                           min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def __call__(self, frame_bgr):
        """The Skeleton of the person in a BGR frame (coordinates normalised to the frame), or None."""
        return self.detect_with_mask(frame_bgr)[0]

    def detect_with_mask(self, frame_bgr):
        """(Skeleton or None, the person's mask as uint8 0..255 at the frame's size, or None)."""
        result = self.pose.process(cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB))  # MediaPipe expects RGB
        if result.pose_landmarks is None:
            return None, None
        mask = result.segmentation_mask
        mask = None if mask is None else (mask * 255).round().astype(np.uint8)
        return Skeleton.from_mediapipe(result.pose_landmarks), mask

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.pose.close()


REDETECT_SIDE = 384  # upscaled side before detection: MediaPipe misses many people in small crops
REDETECT_PAD = 0.25


class Redetector:
    """MediaPipe Pose in static mode on square BGR images (generated or real crops), to check that a picture shows
    a person in the pose asked for: returns the 13 reduced joints in the image's own coordinates (0..1), or None
    where it finds nobody. Evaluate.py and the trainers' per-epoch scores use it alike."""

    def __init__(self):
        self.detect = PoseDetector(static=True)

    def __call__(self, image):
        pad = int(REDETECT_SIDE * REDETECT_PAD)
        big = cv2.resize(image, (REDETECT_SIDE, REDETECT_SIDE), interpolation=cv2.INTER_CUBIC)
        skeleton = self.detect(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE))
        if skeleton is None:
            return None
        return (skeleton.landmarks[REDUCED_JOINTS, :2] * (REDETECT_SIDE + 2 * pad) - pad) / REDETECT_SIDE

    def close(self):
        self.detect.close()
