"""How the programs run: user errors as one line, the compute device, atomic file writes.

Every command-line program in src/ wraps its main() in run_main(), so a bad input (a missing video, a foreign
checkpoint, an unwritable output) ends with one line on stderr and exit status 2, never a traceback.
"""
import contextlib
import os
import sys
import tempfile
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_DIR / "data"


class UserError(Exception):
    """Something wrong with what the user gave us. The message says what, and what to do about it."""


def run_main(main):
    """Run a program's main(); report a UserError as one line and exit 2, Ctrl-C as exit 130."""
    try:
        main()
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def pick_device(name=None):
    """The torch device to compute on: `name` if given ('cpu', 'cuda', 'cuda:1', 'mps'), else CUDA, MPS or CPU."""
    import torch  # here, not at the top, so programs that never touch a network start fast

    if name is None or name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}': use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but this torch sees no CUDA GPU: use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device '{name}' asked for, but MPS is not available here: use --device cpu")
    return device


def atomic_write(path, write):
    """Call write(tmp_path) to fill a temporary file beside `path`, then rename it over `path`.

    A crash or Ctrl-C half-way leaves the old file (or none), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes files private; outputs should be like any other file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable(path):
    """Fail early, before any long work, if `path` cannot be created."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UserError(f"output '{path}' is a directory: give a file name such as {path / 'dance.mp4'}")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder for output '{path}': {error.strerror}") from None
    try:  # a file, made and removed: the permission bits alone say nothing of a read-only file system, or to root
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise UserError(f"cannot write output '{path}': folder '{parent}' is not writable ({error.strerror})") from None


@contextlib.contextmanager
def native_stderr_silenced():
    """Send file descriptor 2 to /dev/null and yield a text stream to the real stderr, for progress bars.

    MediaPipe's C++ code logs one-time warnings there, from its own threads at moments nobody controls, and no
    setting turns them off; they would bury the lines meant for the user. Python exceptions still surface: they
    are printed after the block, once stderr is back.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    terminal = os.fdopen(os.dup(saved), "w")
    try:
        yield terminal
    finally:
        terminal.close()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
