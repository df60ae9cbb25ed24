"""Shared fixtures. The sample footage must be present (`make test` fetches it); caches built from it are made once
per test session in a temporary data folder, with the real MediaPipe detector."""
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from DanceDemo import SAMPLE_SOURCE, SAMPLE_TARGET  # noqa: E402


@pytest.fixture(scope="session")
def sample_videos():
    missing = [p for p in (SAMPLE_SOURCE, SAMPLE_TARGET) if not p.exists()]
    if missing:
        pytest.fail(f"sample footage missing ({missing[0]}): run `make sample` (make test does it)")
    return SAMPLE_SOURCE, SAMPLE_TARGET


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def sample_target(sample_videos, data_dir):
    from VideoSkeleton import VideoSkeleton
    return VideoSkeleton(sample_videos[1], mod_frame=1, data_dir=data_dir)


def run_program(*args, timeout=600):
    """Run one of the programs in src/ as a user would; return the finished process (text output)."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=SRC.parent)


def assert_one_line_error(result, *expected):
    """A refused input: exit status 2, one 'error:' line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for text in expected:
        assert text in errors[0], errors[0]


SMALL = ["--size", "64", "--ngf", "8", "--batch-size", "16"]


@pytest.fixture(scope="session")
def trained(sample_videos, data_dir, sample_target):
    """One epoch of each model at 64 px on the sample target, trained by the real CLIs: the models' folder."""
    target = sample_videos[1]
    for script, extra in (("GenVanillaNN.py", ["--variant", "1"]), ("GenVanillaNN.py", ["--variant", "2"]),
                          ("GenGAN.py", ["--ndf", "8"]), ("GenVanillaNN.py", ["--baseline"])):
        result = run_program(f"src/{script}", "--target", target, "--epochs", "1", *SMALL, *extra,
                             "--data-dir", data_dir)
        assert result.returncode == 0, result.stderr
        assert "epoch 1: " in result.stdout and "val_ssim" in result.stdout
    return sample_target.dir / "models"
