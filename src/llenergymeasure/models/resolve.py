"""Turn a configured model name into something ``from_pretrained`` loads, offline first.

Resolution order, first match wins:

1. ``builtin:<alias>``: a builtin model, built once into llem's cache (``builtin.py``).
2. An existing local directory holding ``config.json``.
3. A HuggingFace id whose snapshot (config and weights) is in the local HF cache, at
   ``revision`` if one is given. The snapshot directory is returned, so loading it
   needs no network and gets exactly the cached revision.
4. A HuggingFace id that the hub confirms within a few seconds, unless
   ``HF_HUB_OFFLINE`` is set. Loading it downloads the weights.

Anything else raises `ModelNotFound` with one line saying what was tried and how to fix it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.log import logger
from llenergymeasure.models.builtin import BUILTIN_PREFIX, builtin_model_dir, known_aliases

ModelSource = Literal["builtin", "local", "hub_cache", "hub"]

HUB_CHECK_TIMEOUT_S = 5.0
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_TRUTHY = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved to a loadable location.

    Attributes:
        name: The name as configured, e.g. ``"builtin:tiny-llama"``.
        path: What to pass to ``AutoModelForCausalLM/AutoTokenizer.from_pretrained``:
            a local directory, or for ``source == "hub"`` the hub id itself (pass the
            same ``revision`` to ``from_pretrained`` then).
        source: Where it was found: ``builtin``, ``local``, ``hub_cache`` or ``hub``.

    """

    name: str
    path: str
    source: ModelSource


def resolve_model(name: str, *, revision: str | None = None) -> ResolvedModel:
    """Resolve a configured model name, trying local sources before the network.

    Args:
        name: ``builtin:<alias>``, a local directory, or a HuggingFace id.
        revision: A branch, tag or commit of a HuggingFace id; ignored for builtins
            and local directories.

    Returns:
        The resolved model.

    Raises:
        ModelNotFound: Nothing matched; the message lists what was tried and the fix.

    """
    if name.startswith(BUILTIN_PREFIX):
        path = builtin_model_dir(name.removeprefix(BUILTIN_PREFIX))
        return ResolvedModel(name=name, path=str(path), source="builtin")
    local = _local_model_dir(name)
    if local is not None:
        return ResolvedModel(name=name, path=str(local), source="local")
    _require_valid_hub_id(name)
    snapshot = _cached_snapshot(name, revision)
    if snapshot is not None:
        return ResolvedModel(name=name, path=str(snapshot), source="hub_cache")
    hub_problem = _hub_problem(name, revision)
    if hub_problem is None:
        return ResolvedModel(name=name, path=name, source="hub")
    raise ModelNotFound(_not_found_message(name, revision, hub_problem))


def _local_model_dir(name: str) -> Path | None:
    """Return ``name`` as a model directory, None if it is not a path on disk.

    Raises:
        ModelNotFound: The path exists but is not a directory with ``config.json``.

    """
    path = Path(name).expanduser()
    if not path.exists():
        if _looks_like_path(name):
            raise ModelNotFound(f"Model '{name}': no such local directory. {_fix_hint()}")
        return None
    if not path.is_dir():
        raise ModelNotFound(
            f"Model '{name}' is a file, not a model directory: give the directory that "
            "holds config.json and the weights."
        )
    if not (path / "config.json").is_file():
        raise ModelNotFound(
            f"Local directory '{name}' has no config.json, so it is not a HuggingFace "
            "model directory: point to the folder that holds config.json and the weights "
            "(e.g. one written by save_pretrained)."
        )
    return path.resolve()


def _looks_like_path(name: str) -> bool:
    """Tell whether ``name`` can only be a filesystem path, never a hub id."""
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1 or "\\" in name


def _require_valid_hub_id(name: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError as e:
        raise ModelNotFound(
            f"Model '{name}' is not a builtin, not a local directory, and not a valid "
            f"HuggingFace id ({e}). {_fix_hint()}"
        ) from e


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """Return the cached snapshot directory of ``repo_id`` if it holds config and weights."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=_hf_cache_dir(), local_files_only=True
        )
    except LocalEntryNotFoundError:
        return None
    snapshot = Path(folder)
    has_config = (snapshot / "config.json").is_file()
    has_weights = any((snapshot / f).is_file() for f in WEIGHT_FILES)
    if has_config and has_weights:
        return snapshot
    logger.info("HF cache holds {} without config.json or weights; not using it", snapshot)
    return None


def _hf_cache_dir() -> str | None:
    """Return ``$HF_HUB_CACHE`` read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_HUB_CACHE") or None


def _hub_offline() -> bool:
    """Tell whether ``HF_HUB_OFFLINE`` is set, read now rather than at import time."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return env in _TRUTHY or bool(constants.HF_HUB_OFFLINE)


def _hub_problem(repo_id: str, revision: str | None) -> str | None:
    """Ask the hub for ``repo_id``'s metadata within `HUB_CHECK_TIMEOUT_S`.

    Returns:
        None if the hub knows the model, else a short reason it cannot be used.

    """
    if _hub_offline():
        return "hub not asked (HF_HUB_OFFLINE is set)"
    outcome: dict[str, BaseException | None] = {}
    # A daemon thread bounds the wait even where DNS resolution ignores the HTTP timeout.
    thread = threading.Thread(
        target=_ask_hub, args=(repo_id, revision, outcome), daemon=True, name="llem-hub-check"
    )
    thread.start()
    thread.join(HUB_CHECK_TIMEOUT_S + 1.0)
    if "error" not in outcome:
        return f"hub did not answer within {HUB_CHECK_TIMEOUT_S:.0f} s"
    error = outcome["error"]
    return None if error is None else _describe_hub_error(error)


def _ask_hub(repo_id: str, revision: str | None, outcome: dict) -> None:
    """Fetch the model's metadata; store the exception raised, or None on success."""
    from huggingface_hub import model_info

    try:
        model_info(repo_id, revision=revision, timeout=HUB_CHECK_TIMEOUT_S)
    # Transport errors differ between huggingface_hub versions (requests, httpx), so
    # every failure is caught here and its reason is put into the ModelNotFound message.
    except Exception as e:
        logger.debug("Hub metadata check for {} failed: {!r}", repo_id, e)
        outcome["error"] = e
    else:
        outcome["error"] = None


def _describe_hub_error(error: BaseException) -> str:
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(error, RevisionNotFoundError):
        return "hub has no such revision"
    if isinstance(error, RepositoryNotFoundError):
        return "hub has no such model (or it is private: run `hf auth login`)"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"hub unreachable ({type(error).__name__}: {first_line})"


def _not_found_message(name: str, revision: str | None, hub_problem: str) -> str:
    at = f" at revision '{revision}'" if revision else ""
    cache = _hf_cache_dir() or _default_hf_cache()
    return (
        f"Model '{name}'{at} not found: not a builtin, no local directory '{name}', "
        f"not in the HF cache ({cache}), {hub_problem}. {_fix_hint(name)}"
    )


def _default_hf_cache() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _fix_hint(hub_id: str = "<id>") -> str:
    builtins = " or ".join(BUILTIN_PREFIX + alias for alias in known_aliases())
    return (
        f"Use {builtins}, a local directory with config.json, or a HuggingFace id "
        f"already in the HF cache (`hf download {hub_id}`, formerly `huggingface-cli download`)."
    )
