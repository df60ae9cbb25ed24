"""The shape of the house: making a video never reaches the training code, and the trainers' command lines stay
short."""
import ast
import re

from conftest import SRC, run_program

TRAINING = {"GenGAN", "GenVanillaNN", "TrainingSetup", "Training"}


def imports_of(module):
    """The src/ modules that `module` imports anywhere in its file, function-level imports included."""
    tree = ast.parse((SRC / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return {name for name in names if (SRC / f"{name}.py").exists()}


def reachable(module):
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += imports_of(name)
    return seen


def test_making_a_video_reaches_the_networks_checkpoints_and_memory_never_a_trainer():
    for program in ("DanceDemo", "Evaluate", "App"):
        reached = reachable(program)
        assert {"Networks", "Checkpoints", "AppearanceMemory"} <= reached, program
        assert not reached & TRAINING, (program, reached & TRAINING)


def test_imports_flow_one_way():
    """No cycles: every module can be read after the ones it imports."""
    for path in SRC.glob("*.py"):
        for other in imports_of(path.stem) - {path.stem}:
            assert path.stem not in reachable(other), (path.stem, other)


def test_the_trainers_offer_a_short_command_line():
    for trainer in ("GenGAN.py", "GenVanillaNN.py"):
        result = run_program(f"src/{trainer}", "--help")
        assert result.returncode == 0, result.stderr
        options = set(re.findall(r"^  (-[-\w]+)", result.stdout, re.MULTILINE))
        assert "--recipe" in options and "--time-budget" in options
        assert len(options) <= 18, (trainer, sorted(options))
