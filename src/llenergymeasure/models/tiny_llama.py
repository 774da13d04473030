"""The recipe of `builtin:tiny-llama`: a seeded random 2-layer Llama and its tokenizer.

The byte-level BPE tokenizer is trained here on an English corpus generated in code, so
the build is deterministic (byte-identical files on every machine) and takes seconds.
Four attention heads and two KV heads, so the model splits over two tensor-parallel ranks.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

TINY_SEED = 0
TINY_VOCAB_SIZE = 1000
TINY_MAX_POSITIONS = 2048
TINY_SPECIAL_TOKENS = {"unk": "<unk>", "bos": "<s>", "eos": "</s>", "pad": "<pad>"}


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


def build_tiny_llama(dest: Path) -> None:
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
