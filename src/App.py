"""App: the whole pipeline in a web page on your own machine, for those who would rather not learn four programs.

    python src/App.py [--host 127.0.0.1] [--port 7860] [--data-dir DIR]

Pick a target video (the person you will see) and a source video (the moves), each uploaded or the built-in sample;
pick a generator (GEN_TYPE 1-4). For 2-4 the app trains one for the minutes you give, showing its losses and sample
grid as they come, or uses the one already trained for that target. The result plays in the page and can be
downloaded; Evaluate.py's held-out scores can be computed too.

It runs the same code as the command-line programs: VideoSkeleton, the trainers (as the command lines you would
type, in a child process, so that a crash there never takes the page down), DanceDemo and Evaluate. Each browser
session gets its own folder, DATA_DIR/app/<session>/ (uploads, caches, models, videos), so two people using the app
at once never see or overwrite each other's files. A bad upload (not a video, nobody in it, too short to train on)
gets the programs' own one-line message in the page, and the app goes on.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves this machine
import gradio as gr  # noqa: E402

import Evaluate
from DanceDemo import SAMPLE_SOURCE, SAMPLE_TARGET, DanceDemo
from Generators import GEN_TYPES, TRAINERS
from Runtime import DEFAULT_DATA_DIR, REPO_DIR, UserError, run_main
from VideoSkeleton import VideoSkeleton

TRAINING_SIZE = 128


def session_folder(root, request):
    """This browser session's own folder: uploads, caches, models and videos."""
    session = re.sub(r"[^A-Za-z0-9_-]", "", getattr(request, "session_hash", None) or "local") or "local"
    folder = Path(root) / "app" / session
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chosen_video(upload, use_sample, sample, folder, role):
    """The video to use for `role`: the sample, or a copy of the upload in the session's folder (named after the
    role, so that caches and models stay apart from the other video's)."""
    if use_sample:
        if not sample.exists():
            raise UserError(f"the sample {role} video is not here: run `make sample` first")
        return sample
    if not upload:
        raise UserError(f"no {role} video: upload one, or tick 'use the sample'")
    upload = Path(upload)
    copy = folder / "videos" / f"{role}{upload.suffix.lower() or '.mp4'}"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(upload, copy)
    return copy


def newest(folder, pattern):
    found = sorted(Path(folder).glob(pattern), key=lambda p: p.stat().st_mtime)
    return str(found[-1]) if found else None


def train(kind, target, data_dir, minutes):
    """Train a `kind` model on `target` with the trainer's own command line, in a child process; yield a status
    line while it runs. The trainer writes its sample grids and loss plot into the target's models folder."""
    script, *options = TRAINERS[kind].split()
    command = [sys.executable, str(REPO_DIR / "src" / script), *options, "--target", str(target), "--data-dir",
               str(data_dir), "--size", str(TRAINING_SIZE), "--time-budget", f"{minutes:g}"]  # as many epochs as fit
    models = Path(data_dir) / target.stem / "models"
    for old in models.glob(f"{kind}_{TRAINING_SIZE}*"):  # a new training starts over
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_DIR)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        epochs = [line for line in lines if line.startswith("epoch ")]
        yield f"training {kind} for {minutes:g} minutes: " + (epochs[-1].strip()[:160] if epochs else
                                                                          "loading the crops and the memory ...")
        time.sleep(2)
    reader.join()
    errors = [line[len("error: "):] for line in process.stderr.read().splitlines() if line.startswith("error: ")]
    if process.returncode != 0:
        raise UserError(errors[-1] if errors else f"training stopped with exit status {process.returncode}")


def make_video(target_upload, sample_target, source_upload, sample_source, gen_type, minutes, retrain, layout, root,
               request: gr.Request, progress=gr.Progress(track_tqdm=True)):
    """The button's work, as a stream of (status, video, download, sample grid, loss plot) updates."""
    folder = session_folder(root, request)
    data_dir = folder / "data"
    gen_type = int(gen_type)
    grid = losses = None
    try:
        target = chosen_video(target_upload, sample_target, SAMPLE_TARGET, folder, "target")
        source = chosen_video(source_upload, sample_source, SAMPLE_SOURCE, folder, "source")
        yield "finding the person in the target video ...", None, None, None, None
        VideoSkeleton(target, mod_frame=1, data_dir=data_dir)
        yield "finding the person in the source video ...", None, None, None, None
        VideoSkeleton(source, mod_frame=1, data_dir=data_dir)
        kind = GEN_TYPES[gen_type].kind
        if kind:
            models = data_dir / target.stem / "models"
            if retrain or not list(models.glob(f"{kind}_*.pt")):
                for status in train(kind, target, data_dir, float(minutes)):
                    grid = newest(models, f"{kind}_*_samples/epoch_*.png")
                    losses = newest(models, f"{kind}_*_loss.png")
                    yield status, None, None, grid, losses
            grid = newest(models, f"{kind}_*_samples/epoch_*.png")
            losses = newest(models, f"{kind}_*_loss.png")
        yield f"making the video with GEN_TYPE {gen_type} ({GEN_TYPES[gen_type].name}) ...", None, None, grid, losses
        out = folder / "out" / f"dance_gen{gen_type}_{time.strftime('%H%M%S')}.mp4"
        out.parent.mkdir(exist_ok=True)
        frames, codec, _ = DanceDemo(source, gen_type, target, data_dir).write(out, layout=layout)
        yield f"done: {frames} frames ({codec}), {out.name}", str(out), str(out), grid, losses
    except UserError as error:  # the programs' own one line, in the page
        yield f"error: {error}", None, None, grid, losses


def score(target_upload, sample_target, source_upload, sample_source, gen_type, root, request: gr.Request,
          progress=gr.Progress(track_tqdm=True)):
    """Evaluate.py on the target's held-out frames for this generator: its table, as Markdown."""
    folder = session_folder(root, request)
    try:
        target = chosen_video(target_upload, sample_target, SAMPLE_TARGET, folder, "target")
        source = chosen_video(source_upload, sample_source, SAMPLE_SOURCE, folder, "source")
        args = argparse.Namespace(target=target, source=source, gen_type=[int(gen_type)], baseline=False,
                                  data_dir=folder / "data", score_size=None, val_fraction=0.2, max_frames=1000,
                                  device=None, smooth=True,
                                  report=folder / "report")
        report = Evaluate.evaluate(args)[0]
    except UserError as error:
        return f"**error:** {error}"
    return Evaluate.markdown_table(report)


def build(root):
    """The page."""
    with gr.Blocks(title="Everybody Dance Now") as page:
        gr.Markdown("# Everybody Dance Now, on one machine\nThe **target** video's person, doing the **source** "
                    "video's moves. Videos stay on this machine.")
        with gr.Row():
            with gr.Column():
                target = gr.File(label="target video (the person you will see)", file_types=["video"],
                                 elem_id="target_upload")
                sample_target = gr.Checkbox(label="use the sample target instead", value=False,
                                            elem_id="sample_target")
            with gr.Column():
                source = gr.File(label="source video (the moves)", file_types=["video"], elem_id="source_upload")
                sample_source = gr.Checkbox(label="use the sample source instead", value=False,
                                            elem_id="sample_source")
        with gr.Row():
            gen_type = gr.Radio([(f"{k}: {v.name}", k) for k, v in GEN_TYPES.items()], value=1,
                                label="generator (GEN_TYPE)",
                                elem_id="gen_type")
            minutes = gr.Slider(1, 60, value=5, step=1, label="training minutes (GEN_TYPE 2-4)")
            retrain = gr.Checkbox(label="train anew even if this target has a model", value=False)
        layout = gr.Radio([("source beside the result", "side-by-side"), ("the target's whole frame", "target")],
                          value="side-by-side", label="video", elem_id="layout")
        run = gr.Button("Make the video", variant="primary", elem_id="run")
        status = gr.Textbox(label="status", interactive=False, elem_id="status")
        with gr.Row():
            video = gr.Video(label="result", interactive=False, elem_id="result")
            download = gr.File(label="download", interactive=False)
        with gr.Row():
            grid = gr.Image(label="training samples: pose | memory | real | generated (held-out frames)",
                            interactive=False)
            losses = gr.Image(label="training losses", interactive=False)
        scores_button = gr.Button("Score on held-out frames (Evaluate.py)")
        scores = gr.Markdown()
        root_state = gr.State(str(root))
        inputs = [target, sample_target, source, sample_source, gen_type]
        run.click(make_video, inputs + [minutes, retrain, layout, root_state], [status, video, download, grid, losses],
                  concurrency_limit=2)
        scores_button.click(score, inputs + [root_state], scores, concurrency_limit=2)
    return page


def main(argv=None):
    parser = argparse.ArgumentParser(description="The dance pipeline in a local web page.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="the sessions' folders go in DATA_DIR/app/ (default data/)")
    args = parser.parse_args(argv)
    build(args.data_dir).queue().launch(server_name=args.host, server_port=args.port, show_error=True,
                                        allowed_paths=[str(args.data_dir / "app")])


if __name__ == "__main__":
    run_main(main)
