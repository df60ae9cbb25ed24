"""The square crop: padding where it leaves the frame (never wrapping), landmarks following the pixels."""
import cv2
import numpy as np
import pytest

from Preprocess import crop_square, frame_to_crop, square_crop_box


@pytest.mark.parametrize("side", [200, 150, 90])
def test_crop_inside_the_frame_is_the_scaled_region(side):
    rows, cols = np.mgrid[0:300, 0:400]
    smooth = 128 + 60 * np.sin(cols / 17.0) + 60 * np.cos(rows / 23.0)
    frame = np.repeat(smooth[:, :, None], 3, axis=2).astype(np.uint8)
    crop = crop_square(frame, (50, 40, side), 64)
    expected = cv2.resize(frame[40:40 + side, 50:50 + side], (64, 64), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(float) - expected).mean() < 1.5


@pytest.mark.parametrize("box", [(-100, 50, 200), (300, 50, 200), (100, -120, 200), (100, 200, 200),
                                 (-50, -50, 500)])
def test_crop_leaving_the_frame_is_padded_black_not_wrapped(box):
    frame = np.full((300, 400, 3), 200, np.uint8)
    size = 100
    crop = crop_square(frame, box, size)
    x0, y0, side = box
    rows, cols = np.mgrid[0:size, 0:size]
    # Frame coordinates of each output pixel centre.
    fx, fy = x0 + (cols + 0.5) * side / size, y0 + (rows + 0.5) * side / size
    inside = (fx > 2) & (fx < 398) & (fy > 2) & (fy < 298)
    outside = (fx < -2) | (fx > 402) | (fy < -2) | (fy > 302)
    assert (crop[inside] == 200).all()
    assert (crop[outside] == 0).all()
    assert outside.any()


def test_crop_entirely_outside_the_frame_is_black():
    assert not crop_square(np.full((10, 10, 3), 9, np.uint8), (20, 20, 5), 8).any()


def test_landmarks_follow_their_pixel_into_the_crop():
    frame = np.zeros((480, 640, 3), np.uint8)
    x, y = 600, 100  # near the right edge, so the crop pads
    cv2.circle(frame, (x, y), 6, (255, 255, 255), -1)
    box = (420, -80, 400)
    size = 200
    crop = crop_square(frame, box, size)
    landmark = frame_to_crop(np.array([[x / 640, y / 480, 0.1, 1.0]]), box, 640, 480)[0]
    found_y, found_x = np.argwhere(crop[:, :, 0] > 128).mean(axis=0)
    assert landmark[0] * size == pytest.approx(found_x + 0.5, abs=1.0)
    assert landmark[1] * size == pytest.approx(found_y + 0.5, abs=1.0)
    assert landmark[2] == pytest.approx(0.1 * 640 / 400)


def test_crop_box_is_square_and_holds_every_frame_with_a_margin():
    rng = np.random.default_rng(1)
    landmarks = np.zeros((100, 33, 4), np.float32)
    landmarks[..., 0] = rng.uniform(0.3, 0.5, (100, 33))
    landmarks[..., 1] = rng.uniform(0.2, 0.9, (100, 33))
    landmarks[..., 3] = 1
    landmarks[7, :, :2] = 5.0  # one absurd detection must not blow the box up
    x0, y0, side = square_crop_box(landmarks, 1000, 500)
    good = np.delete(landmarks, 7, axis=0)
    xs, ys = good[..., 0] * 1000, good[..., 1] * 500
    assert x0 < xs.min() and x0 + side > xs.max() and y0 < ys.min() and y0 + side > ys.max()
    assert side < 1.6 * (ys.max() - ys.min())
