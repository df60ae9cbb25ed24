"""Training from the command line on the real sample: files written, checkpoints round trip, resume, refusals,
two processes under torchrun, and DanceDemo with the trained models."""
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import Checkpoints
import TrainingSetup
import VideoIO
from conftest import SMALL, assert_one_line_error, run_program
from GenGAN import GenGAN
from GenVanillaNN import GenVanillaNN
from Runtime import UserError
from VideoSkeleton import split_indices


def test_training_writes_checkpoint_sample_grid_and_loss_plot(trained):
    for name, columns in (("vanilla1_64", 3), ("vanilla2_64", 4), ("gan_64", 4), ("baseline_64", 3)):
        grid = cv2.imread(str(trained / f"{name}_samples" / "epoch_001.png"))
        # six held-out frames: pose | appearance memory (image networks) | real | generated
        assert grid.shape == (6 * 64, columns * 64, 3)
        assert cv2.imread(str(trained / f"{name}_loss.png")) is not None
        history = json.loads((trained / f"{name}_history.json").read_text())
        assert history[0]["epoch"] == 1 and 0 < history[0]["val_l1"] < 2
        assert 0 <= history[0]["val_missed"] <= 1 and history[0]["minutes"] > 0
        # the GAN trains with the SSIM term by default (GenGAN.GAN_SSIM_WEIGHT), the other networks without it
        assert ("ssim" in history[0]) == (name == "gan_64")
        checkpoint = torch.load(trained / f"{name}.pt", weights_only=True)
        assert checkpoint["epoch"] == 1 and checkpoint["config"]["size"] == 64
        assert checkpoint["target"]["name"] == "pose2sim_cam02"


def test_checkpoints_load_into_generators_that_make_images(trained, sample_target):
    for generator in (GenVanillaNN(sample_target, optSkeOrImage=1, device="cpu"),
                      GenVanillaNN(sample_target, optSkeOrImage=2, device="cpu"), GenGAN(sample_target, device="cpu")):
        image = generator.generate(sample_target.ske[90])
        # A network composed with the memory draws at the crops' size (256 px), the one from the joint vector at
        # its own.
        size = 64 if generator.kind == "vanilla1" else sample_target.crop_size
        assert generator.output_size == size and sample_target.crop_size == 256
        assert image.shape == (size, size, 3) and image.dtype == np.uint8 and image.std() > 1
    # The generator's weights are exactly the checkpoint's.
    saved = torch.load(trained / "gan_64.pt", weights_only=True)["generator"]
    loaded = GenGAN(sample_target, device="cpu").net.state_dict()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


def test_a_network_composed_at_the_crops_size_is_sharper_than_at_its_own_size_enlarged(trained, sample_target):
    """The 64-px GAN's output composed at 256 px from the memory warped there, against the same network composed
    at 64 px and enlarged (as every image was before), and against its drawing enlarged without the memory's finer
    detail: sharper in the person's box, on real held-out frames."""
    import torch.nn.functional as F

    import Networks
    from Generators import model_inputs
    from Measures import sharpnesses
    from Skeleton import REDUCED_JOINTS

    generator = GenGAN(sample_target, device="cpu")
    poses = sample_target.ske[80:92]
    composed = generator.generate_many(poses)
    inputs = model_inputs(poses, generator.config, generator.memory)
    large = Networks.to_unit(inputs["memory"])
    inputs["memory"] = F.interpolate(inputs["memory"].float(), size=(64, 64), mode="area").round().byte()
    with torch.no_grad():
        small = Networks.to_uint8_bgr(generator.net(Networks.generator_input("gan", inputs)))
        drawn = F.interpolate(generator.net.net(Networks.generator_input("gan", inputs)), size=(256, 256),
                              mode="bilinear", align_corners=False)
    enlarged = [cv2.resize(image, (256, 256), interpolation=cv2.INTER_CUBIC) for image in small]
    trust = (drawn[:, 3:] + 1) / 2
    drawn_soft = Networks.to_uint8_bgr(trust * large + (1 - trust) * drawn[:, :3])  # what is drawn, only enlarged
    driving = sample_target.landmarks[80:92][:, REDUCED_JOINTS, :2]
    assert composed[0].shape == (256, 256, 3)
    assert sharpnesses(composed, driving, 256).mean() > 1.5 * sharpnesses(enlarged, driving, 256).mean()
    # What the network draws carries the memory's detail finer than 64 px: sharper than its drawing enlarged alone
    assert sharpnesses(composed, driving, 256).mean() > 1.5 * sharpnesses(drawn_soft, driving, 256).mean()


def own_copy(data_dir, sample_videos, tmp_path, models=True):
    """A copy of the sample target's cache (and its trained models) for a test that changes them."""
    name = sample_videos[1].stem
    shutil.copytree(data_dir / name, tmp_path / "data" / name,
                    ignore=None if models else shutil.ignore_patterns("models"))
    return tmp_path / "data"


def test_resume_continues_and_refuses_what_it_cannot_continue(trained, sample_videos, data_dir, tmp_path):
    own = own_copy(data_dir, sample_videos, tmp_path)  # the shared checkpoint stays at epoch 1 for the other tests
    models = own / sample_videos[1].stem / "models"
    args = ["src/GenVanillaNN.py", "--target", sample_videos[1], "--variant", "2", *SMALL, "--data-dir", own]
    assert_one_line_error(run_program(*args, "--epochs", "1"), "exists: add --resume")
    assert_one_line_error(run_program(*args, "--epochs", "1", "--resume"), "already trained 1 epochs")
    before = torch.load(models / "vanilla2_64.pt", weights_only=True)
    result = run_program(*args, "--epochs", "2", "--resume")
    assert result.returncode == 0, result.stderr
    assert "resuming after epoch 1" in result.stdout and "epoch 2: " in result.stdout
    after = torch.load(models / "vanilla2_64.pt", weights_only=True)
    assert after["epoch"] == 2 and len(after["history"]) == 2
    assert after["history"][0] == before["history"][0]
    # The images come from the epoch with the best held-out SSIM, training goes on from the last epoch's weights.
    best = max(after["history"], key=lambda h: h["val_ssim"])["epoch"]
    kept = before["generator"] if best == 1 else after["last_generator"]
    assert after["best_epoch"] == best and all(torch.equal(after["generator"][k], kept[k]) for k in kept)
    assert after["optimizer"]["state"][0]["step"] > before["optimizer"]["state"][0]["step"]
    # Without --epochs a time budget alone decides how long: no limit on the epochs, stopped by the budget.
    result = run_program(*args, "--resume", "--time-budget", "0.1")
    assert result.returncode == 0, result.stderr
    assert "epoch 3: " in result.stdout and "time budget of 0.1 minutes spent" in result.stdout
    resumed = torch.load(models / "vanilla2_64.pt", weights_only=True)
    assert resumed["epoch"] >= 3 and resumed["config"]["epochs"] is None
    changed = [a for a in args if a != "8"] + ["--epochs", "100", "--resume"]  # --ngf 8 -> --ngf
    changed[changed.index("--ngf")] = "--ngf=16"
    assert_one_line_error(run_program(*changed), "it was trained with ngf=8")


def test_a_recipe_sets_what_the_command_line_does_not_and_resuming_keeps_it(sample_videos, data_dir, sample_target,
                                                                             tmp_path):
    """A recipe file's settings go into the checkpoint; a resumed run keeps the checkpoint's settings unless told
    otherwise, and a setting given on the command line wins over the recipe's."""
    own = own_copy(data_dir, sample_videos, tmp_path, models=False)
    recipe = tmp_path / "sharp.py"
    recipe.write_text("# L1 and the SSIM term, eight images a step\nssim_weight = 0.5\nbatch_size = 8\n")
    args = ["src/GenVanillaNN.py", "--baseline", "--target", sample_videos[1], "--data-dir", own]
    result = run_program(*args, "--recipe", recipe, "--batch-size", "16", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    path = own / sample_videos[1].stem / "models" / "baseline_64.pt"
    config = torch.load(path, weights_only=True)["config"]
    assert (config["ssim_weight"], config["batch_size"]) == (0.5, 16) and set(config) == {
        "kind", *Checkpoints.DEFAULTS["baseline"]}
    result = run_program(*args, "--resume", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    resumed = torch.load(path, weights_only=True)
    assert resumed["config"]["ssim_weight"] == 0.5 and "ssim" in resumed["history"][1]


def test_without_epochs_a_time_budget_decides_how_long_and_without_either_ten_epochs():
    assert TrainingSetup.epochs_to_train(None, None) == TrainingSetup.EPOCHS_WITHOUT_BUDGET == 10
    assert TrainingSetup.epochs_to_train(None, 30) is None  # until the budget is spent
    assert TrainingSetup.epochs_to_train(5, 30) == 5 and TrainingSetup.epochs_to_train(5, None) == 5


def test_missing_checkpoint_names_the_command_that_trains_one(sample_videos, tmp_path):
    source, target = sample_videos
    result = run_program("src/DanceDemo.py", "--gen-type", "3", "--source", source, "--target", target,
                         "--out", tmp_path / "o.mp4", "--data-dir", tmp_path)
    assert_one_line_error(result, "python src/GenVanillaNN.py --target", "--variant 2")


def test_foreign_tampered_and_wrong_kind_checkpoints_are_refused(trained, sample_videos, data_dir, tmp_path):
    source, target = sample_videos
    demo = ["src/DanceDemo.py", "--source", source, "--out", tmp_path / "o.mp4", "--data-dir", data_dir]
    # Foreign: trained on the cam02 target, used with cam01 as target.
    assert_one_line_error(run_program(*demo, "--target", source, "--gen-type", "4",
                                      "--checkpoint", trained / "gan_64.pt"), "was trained on target 'pose2sim_cam02'")
    # Another kind: a vanilla checkpoint for the GAN.
    assert_one_line_error(run_program(*demo, "--target", target, "--gen-type", "4",
                                      "--checkpoint", trained / "vanilla2_64.pt"), "holds a 'vanilla2' model")
    # Tampered: a pickle that would run code when loaded without weights_only.
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as file:
        pickle.dump({"format": Checkpoints.CHECKPOINT_FORMAT, "payload": os.system}, file)
    assert_one_line_error(run_program(*demo, "--target", target, "--gen-type", "4", "--checkpoint", evil),
                          "not a readable checkpoint")
    # Damaged: cut in half.
    cut = tmp_path / "cut.pt"
    cut.write_bytes((trained / "gan_64.pt").read_bytes()[:5000])
    assert_one_line_error(run_program(*demo, "--target", target, "--gen-type", "4", "--checkpoint", cut),
                          "not a readable checkpoint")
    assert not (tmp_path / "o.mp4").exists()


def test_the_demo_remembers_every_target_frame_and_evaluation_only_the_training_ones(trained, sample_target):
    from Generators import make_generator
    train, held = split_indices(sample_target.skeCount(), 0.2)
    scored = make_generator(4, sample_target, device="cpu")
    demo = make_generator(4, sample_target, device="cpu", remember_all=True)
    assert set(scored.memory.frame_index) == set(sample_target.frame_index[train])
    assert set(demo.memory.frame_index) == set(sample_target.frame_index)
    # A held-out pose is remembered as itself only by the demo's memory.
    pose = sample_target.ske[held[5]].landmarks
    assert demo.memory.frame_index[demo.memory.nearest(pose)] == sample_target.frame_index[held[5]]
    assert scored.memory.frame_index[scored.memory.nearest(pose)] != sample_target.frame_index[held[5]]


def test_a_network_dissolves_a_change_of_remembered_frame_in_the_pose_asked_for(trained, sample_target):
    generator = GenGAN(sample_target, device="cpu")
    poses = sample_target.ske[60:100]
    steps = generator.sequence_steps(poses)
    assert [shown for (shown, _, _), _, _ in steps] == generator.memory.coherent_choice([s.landmarks for s in poses])
    # One pose drawn with two remembered frames, and a quarter of the way through the dissolve between them.
    (first, _, _), plate, head = steps[0]
    second = (first + 40) % len(generator.memory.frame_index)
    old, new = (generator.generate_many([poses[0]], [((c, None, 1.0), plate, head)])[0].astype(float)
                for c in (first, second))
    blended = generator.generate_many([poses[0]], [((second, first, 0.25), plate, head)])[0].astype(float)
    assert np.abs(old - new).mean() > 1
    assert np.abs(blended - (0.25 * new + 0.75 * old)).max() <= 1
    alone = generator.generate_many(poses[5:6], steps[5:6])[0].astype(float)
    assert np.abs(generator.generate_sequence(poses)[5] - alone).max() <= 1


@pytest.mark.parametrize("gen_type, layout", [(2, "side-by-side"), (3, "side-by-side"), (4, "side-by-side"),
                                              (4, "target")])
def test_demo_with_trained_models(trained, sample_videos, data_dir, tmp_path, gen_type, layout):
    source, target = sample_videos
    out = tmp_path / f"gen{gen_type}.mp4"
    result = run_program("src/DanceDemo.py", "--gen-type", gen_type, "--source", source, "--target", target,
                         "--out", out, "--data-dir", data_dir, "--device", "cpu", "--layout", layout)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: 100 frames" in result.stdout
    frames = [frame for _, frame in VideoIO.read_frames(out)]
    assert len(frames) == 100 and frames[0].shape == ((1920, 1080, 3) if layout == "target" else (512, 1024, 3))


def test_two_processes_under_torchrun(sample_videos, data_dir, sample_target, tmp_path):
    """DistributedDataParallel with gloo on 2 CPU processes: trains, and only rank 0 writes."""
    own_data = own_copy(data_dir, sample_videos, tmp_path, models=False)
    result = run_program("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "src/GenGAN.py",
                         "--target", sample_videos[1], "--epochs", "1", *SMALL, "--ndf", "8", "--device", "cpu",
                         "--data-dir", own_data)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("epoch 1: ") == 1  # one process reports
    assert "x 2 processes" in result.stdout
    models = own_data / sample_videos[1].stem / "models"
    assert sorted(p.name for p in models.iterdir()) == ["gan_64.pt", "gan_64_history.json", "gan_64_loss.png",
                                                       "gan_64_samples"]
    checkpoint = torch.load(models / "gan_64.pt", weights_only=True)
    # 80 training frames, batch 16 per process, 2 processes: 2 steps, 64 images.
    assert checkpoint["history"][0]["epoch"] == 1


def test_user_errors_from_the_python_api(sample_target):
    with pytest.raises(UserError, match="optSkeOrImage"):
        GenVanillaNN(sample_target, optSkeOrImage=3)
    with pytest.raises(UserError, match="untrained"):
        GenGAN(sample_target, loadFromFile=False)


def test_too_few_frames_a_non_positive_time_budget_and_bad_recipes_are_refused(sample_videos, tmp_path):
    """One line each, before any training: a target too short to hold frames out, a budget of 0 minutes, and
    recipes with a setting out of range, a setting the trainer does not have, or code in them."""
    short = tmp_path / "one_frame.mp4"
    _, frame = next(iter(VideoIO.read_frames(sample_videos[1])))
    with VideoIO.VideoWriter(short, 25, (frame.shape[1], frame.shape[0])) as video:
        video.write(frame)
    result = run_program("src/GenGAN.py", "--target", short, *SMALL, "--data-dir", tmp_path)
    assert_one_line_error(result, "too few to hold out")
    result = run_program("src/GenGAN.py", "--target", sample_videos[1], *SMALL, "--time-budget", "0",
                         "--data-dir", tmp_path)
    assert_one_line_error(result, "--time-budget must be a positive number of minutes")
    recipes = {"trust_weight = -1\n": "trust_weight must be a number of 0 or more",
               "trust_region = 'face'\n": "trust_region must be 'frame' or 'person'",
               "dropout = 0.5\n": "'dropout' is not a setting of the gan trainer",
               "ndf = 8.5\n": "--ndf must be a whole number of 1 or more",
               "import os\n": "line 1: only `name = value` lines are allowed",
               "size = 128 if True else 64\n": "the value of size must be a number"}
    recipe = tmp_path / "recipe.py"
    for text, expected in recipes.items():
        recipe.write_text(text)
        with pytest.raises(UserError, match=re.escape(expected)):
            TrainingSetup.make_config("gan", TrainingSetup.read_recipe(recipe, "gan"))
    result = run_program("src/GenGAN.py", "--target", sample_videos[1], "--recipe", recipe, "--data-dir", tmp_path)
    assert_one_line_error(result, "the value of size must be a number")  # as the program says it
    assert not (tmp_path / sample_videos[1].stem).exists()  # refused before the target's cache was built
    assert_one_line_error(run_program("src/GenGAN.py", "--target", sample_videos[1], "--recipe", tmp_path / "no.py"),
                          "cannot read recipe")


def test_the_recipes_in_config_are_valid_for_their_trainers():
    """Every recipe that the README and the Makefile name reads, and makes a configuration its trainer accepts."""
    recipes = Path(__file__).resolve().parent.parent / "config"
    kinds = {"demo_gan.py": ["gan"], "demo_vanilla.py": ["vanilla1", "vanilla2"], "gan_30min.py": ["gan"],
             "short_clip.py": ["gan"]}
    assert sorted(p.name for p in recipes.glob("*.py")) == sorted(kinds)
    for name, for_kinds in kinds.items():
        for kind in for_kinds:
            settings = TrainingSetup.read_recipe(recipes / name, kind)
            assert settings, name
            config = TrainingSetup.make_config(kind, settings)
            assert all(config[key] == value for key, value in settings.items())


def test_a_checkpoint_of_the_older_format_is_refused_in_one_line(trained, sample_videos, data_dir, tmp_path):
    """A checkpoint written before this version's settled recipe (format 1) is refused with the command that trains
    a new one, not loaded with guessed settings."""
    old = torch.load(trained / "gan_64.pt", weights_only=True)
    old["format"] = "everybody-dance-checkpoint-1"
    old["config"] = {key: value for key, value in old["config"].items() if key != "trust_region"}
    path = tmp_path / "old_gan_64.pt"
    torch.save(old, path)
    result = run_program("src/DanceDemo.py", "--gen-type", "4", "--source", sample_videos[0], "--target",
                         sample_videos[1], "--checkpoint", path, "--out", tmp_path / "o.mp4", "--data-dir", data_dir)
    assert_one_line_error(result, "written by another version of this project", "train one with python src/GenGAN.py")


def test_the_train_bench_times_real_steps_against_a_matrix_product_in_the_steps_precision(sample_videos, data_dir,
                                                                                          sample_target, tmp_path):
    """`bench.py train` on the sample: each row's GFLOP/s also as a share of a large matrix product's on the same
    device, in the precision the trainer's autocast runs the step in, and of a stated peak when given one."""
    import bench

    assert bench.step_dtype(torch.device("cpu")) == torch.float32
    out = tmp_path / "train.json"
    result = run_program("src/bench.py", "train", "--target", sample_videos[1], "--sizes", "64", "--kinds", "vanilla1",
                         "--steps", "2", "--peak-tflops", "2", "--data-dir", data_dir, "--json", out)
    assert result.returncode == 0, result.stderr
    row, = json.loads(out.read_text())["rows"]
    assert row["dtype"] == "float32" and row["matmul_ceiling_gflops"] > 0 and row["achieved_gflops"] > 0
    assert row["share_of_ceiling"] == pytest.approx(row["achieved_gflops"] / row["matmul_ceiling_gflops"])
    assert row["share_of_stated_peak"] == pytest.approx(row["achieved_gflops"] / 2000)
    assert "of the ceiling" in result.stdout
    assert_one_line_error(run_program("src/bench.py", "train", "--target", sample_videos[1], "--peak-tflops", "0"),
                          "--peak-tflops must be a positive number")
