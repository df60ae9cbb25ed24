"""TargetFrame: the generated person put back into the target video's own frame, at its resolution and shape.

The generators draw the square crop around the person (VideoSkeleton's crop box) at their own size. To give the
target's whole frame back, the crop is enlarged to the box's size in the frame and laid over a background plate of
the target at full resolution: the median of the target's frames around one moment that show the same view as
that moment (AppearanceMemory's plates, the same way), where the person is not (their cached segmentation, enlarged
into the frame). Only the person is taken from the generated crop, through a soft mask
around the driving pose, so the background stays sharp and there is no seam at the crop's edge; where the plate
never saw the background (the person stood there throughout), the generated crop's own background fills it.
"""
import warnings

import cv2
import numpy as np

import VideoIO
from AppearanceMemory import (PLATE_STEP_SECONDS, PLATE_VIEW_AGREEMENT, PLATE_WINDOW_SECONDS, background_plate,
                              evenly, moment_frames, placement, view_difference)
from BodyParts import CUT_WIDENING, part_masks

PLATE_FRAMES = 12  # frames in each plate's median, evenly spaced over its window
VIEW_SIDE = 256    # the frames are compared for their view on copies this large (the longer side)
FEATHER = 1 / 24   # the person's mask is grown, then softened, by this fraction of the crop's side


class TargetFrame:
    """Full-frame pictures of the target video `video` (a VideoSkeleton): compose(crop, landmarks, moment)."""

    def __init__(self, video):
        self.video = video
        info = VideoIO.video_info(video.video_path)
        # yuv420p wants even sides: an odd last row or column is left out
        self.size = (info["width"] - info["width"] % 2, info["height"] - info["height"] % 2)
        self.step = max(1, round(PLATE_STEP_SECONDS * video.fps))
        self.first = int(video.frame_index.min())
        self.placements = placement(video.landmarks)
        self.plates = {}  # plate number -> (BGR uint8 plate, holes as float 0..1), made when first needed

    def moment_of(self, landmarks):
        """The target frame number where the person stood in the same place at the same size as in `landmarks`:
        the moment whose surroundings suit a generator that chose none (the joint-vector networks)."""
        return int(self.video.frame_index[np.argmin(np.abs(self.placements - placement(landmarks)).sum(-1))])

    def compose(self, crop, landmarks, moment):
        """The target's whole frame (BGR uint8, self.size) with the person of `crop` (a generated square, BGR) in
        pose `landmarks` (crop coordinates) laid over the plate of target frame `moment`."""
        x0, y0, side = self.video.crop_box
        plate, holes = self.plate(moment)
        width, height = self.size
        left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        out = plate.copy()
        if right > left and bottom > top:
            alpha = self.person_alpha(landmarks, crop.shape[0])
            big = cv2.resize(np.dstack([crop.astype(np.float32), alpha]), (side, side), interpolation=cv2.INTER_CUBIC)
            region = (slice(top, bottom), slice(left, right))
            inside = big[top - y0:bottom - y0, left - x0:right - x0]
            alpha = np.clip(np.maximum(inside[..., 3], holes[region]), 0, 1)[..., None]
            blended = alpha * inside[..., :3] + (1 - alpha) * out[region]
            out[region] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        return out

    def _same_view(self, frames, people, in_moment):
        """Which of `frames` (whole frames, BGR) show the view of those `in_moment` (bool each): within
        PLATE_VIEW_AGREEMENT grey levels of their median where the person (`people`, crop-box masks) is not, compared
        on copies VIEW_SIDE large; the moment's own frames always."""
        (width, height), (x0, y0, side) = self.size, self.video.crop_box
        scale = VIEW_SIDE / max(width, height)
        small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
        left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        small_frames, small_people = [], []
        for frame, person in zip(frames, people):
            whole = np.zeros((height, width), np.uint8)  # the crop box's mask laid into the frame
            if right > left and bottom > top:
                whole[top:bottom, left:right] = person[top - y0:bottom - y0, left - x0:right - x0]
            small_frames.append(cv2.resize(frame, small_size, interpolation=cv2.INTER_AREA))
            small_people.append(cv2.resize(whole, small_size, interpolation=cv2.INTER_NEAREST) > 0)
        moment = [i for i, m in enumerate(in_moment) if m]
        if not moment:  # none of its frames could be read: no view to compare with
            return [True] * len(frames)
        view = background_plate(np.stack([small_frames[i] for i in moment]),
                                np.stack([small_people[i] for i in moment]))
        known, view = ~np.isnan(view).any(-1), np.nan_to_num(view)
        return [m or view_difference(f, known & ~p, view) <= PLATE_VIEW_AGREEMENT
                for f, p, m in zip(small_frames, small_people, in_moment)]

    @staticmethod
    def person_alpha(landmarks, size):
        """A soft mask (size x size, 0..1) of the body parts around a pose, grown a little to hold hair and
        clothes: where the generated person may be."""
        parts = np.max(part_masks(landmarks, size, CUT_WIDENING * 1.2), axis=0)
        grow = max(1, round(size * FEATHER))
        parts = cv2.dilate(parts, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
        return cv2.GaussianBlur(parts, (0, 0), grow)

    def background(self, moment):
        """The target's frame around `moment` with nobody in it (BGR uint8, self.size): for a frame without a pose."""
        return self.plate(moment)[0].copy()

    def plate(self, moment):
        """(plate, holes) of the PLATE_STEP_SECONDS mark nearest target frame `moment`, made when first needed."""
        number = round((moment - self.first) / self.step)
        if number not in self.plates:
            self.plates[number] = self._make_plate(number)
        return self.plates[number]

    def _make_plate(self, number):
        """(plate, holes) for plate `number`: the median of its moment's frames and of the PLATE_FRAMES target frames
        within PLATE_WINDOW_SECONDS of it that show the same view, each without the person; holes (float 0..1,
        softened) where none of them saw the background."""
        video, (width, height) = self.video, self.size
        centre = self.first + number * self.step
        moment = evenly(moment_frames(video.frame_index, centre, video.fps), PLATE_FRAMES)
        window = np.flatnonzero(np.abs(video.frame_index - centre) <= PLATE_WINDOW_SECONDS * video.fps)
        chosen = np.union1d(moment, evenly(window, PLATE_FRAMES))
        frames = read_frames_at(video.video_path, video.frame_index[chosen])
        x0, y0, side = video.crop_box
        stack, person, found = [], [], []
        for index in chosen:
            frame = frames.get(int(video.frame_index[index]))
            if frame is not None:
                stack.append(frame[:height, :width])
                grown = cv2.dilate(video.readMask(index), np.ones((3, 3), np.uint8), iterations=4)
                person.append(cv2.resize(grown, (side, side), interpolation=cv2.INTER_LINEAR) > 32)
                found.append(index)
        shown = self._same_view(stack, person, np.isin(found, moment))
        stack, person = [f for f, keep in zip(stack, shown) if keep], [p for p, keep in zip(person, shown) if keep]
        stack = np.stack(stack)
        plate = np.median(stack, axis=0).astype(np.float32)  # outside the crop box the person never is
        holes = np.zeros((height, width), np.float32)
        left, top, right, bottom = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
        if right > left and bottom > top:  # inside it, the median of the frames where the person is not
            inside = stack[:, top:bottom, left:right].astype(np.float32)
            person = np.stack(person)[:, top - y0:bottom - y0, left - x0:right - x0]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN pixel: a hole
                median = np.nanmedian(np.where(person[..., None], np.nan, inside), axis=0)
            unseen = np.isnan(median[..., 0])
            plate[top:bottom, left:right] = np.where(unseen[..., None], plate[top:bottom, left:right], median)
            holes[top:bottom, left:right] = unseen
        # where the plate never saw the background, the generated crop's own background shows, softly
        soft = cv2.GaussianBlur(cv2.dilate(holes, np.ones((5, 5), np.uint8)), (0, 0), 3)
        return np.clip(plate + 0.5, 0, 255).astype(np.uint8), soft


def read_frames_at(path, numbers):
    """{frame number: BGR frame} for the frames `numbers` of a video, in one pass from the first of them (grabbing,
    not decoding, the frames in between)."""
    wanted, found = set(int(n) for n in numbers), {}
    capture = VideoIO.open_video(path)
    start = min(wanted)
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    index = start
    try:
        while index <= max(wanted):
            if index in wanted:
                ok, frame = capture.read()
                if ok:
                    found[index] = frame
            else:
                ok = capture.grab()
            if not ok:
                break
            index += 1
    finally:
        capture.release()
    return found
