"""Fetch the built-in sample footage into data/sample/ (run by `make sample`, `make demo` and `make test`).

The videos come from the Pose2Sim 0.10.49 wheel on PyPI (BSD-3-Clause, (c) 2022 perfanalytics, David Pagnon):
Pose2Sim/Demo_SinglePerson/videos/cam01.mp4 and cam02.mp4, one man filmed by two of four calibrated cameras, 100
frames each at 60 fps. pip downloads the wheel, its sha256 and each extracted video's are checked against the
values below, and the licence is copied beside the videos. Nothing is committed: every machine fetches its own.
"""
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
WHEEL = "pose2sim==0.10.49"
WHEEL_SHA256 = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
LICENCE_IN_WHEEL = "pose2sim-0.10.49.dist-info/licenses/LICENSE"
VIDEOS = {  # name in data/sample/ -> (path in the wheel, sha256)
    "pose2sim_cam02.mp4": ("Pose2Sim/Demo_SinglePerson/videos/cam02.mp4",
                           "94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442"),
    "pose2sim_cam01.mp4": ("Pose2Sim/Demo_SinglePerson/videos/cam01.mp4",
                           "cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a"),
}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def present():
    return all((SAMPLE_DIR / name).is_file() and sha256(SAMPLE_DIR / name) == digest
               for name, (_, digest) in VIDEOS.items())


def fetch():
    with tempfile.TemporaryDirectory() as tmp:
        print(f"downloading the {WHEEL} wheel (51 MB) for its demo videos ...")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--dest", tmp, WHEEL], check=True, stderr=subprocess.DEVNULL)
        wheel = next(Path(tmp).glob("*.whl"))
        if sha256(wheel) != WHEEL_SHA256:
            sys.exit(f"error: {wheel.name} does not have the expected sha256: not using it")
        SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for name, (member, digest) in VIDEOS.items():
                partial = SAMPLE_DIR / f".{name}.partial"
                with archive.open(member) as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target)
                if sha256(partial) != digest:
                    partial.unlink()
                    sys.exit(f"error: {member} in {wheel.name} does not have the expected sha256")
                partial.replace(SAMPLE_DIR / name)
            (SAMPLE_DIR / "LICENSE-Pose2Sim.txt").write_bytes(archive.read(LICENCE_IN_WHEEL))
    (SAMPLE_DIR / "SOURCE.txt").write_text(
        f"From the {WHEEL} wheel on PyPI (BSD-3-Clause, see LICENSE-Pose2Sim.txt),\n"
        + "".join(f"{name}: {member}, sha256 {digest}\n" for name, (member, digest) in VIDEOS.items()))


if __name__ == "__main__":
    if present():
        print(f"sample footage present in {SAMPLE_DIR}")
    else:
        try:
            fetch()
        except subprocess.CalledProcessError:
            sys.exit(f"error: pip could not download {WHEEL}: is PyPI reachable from this machine?")
        print(f"sample footage in {SAMPLE_DIR}: {', '.join(VIDEOS)}")
