from __future__ import annotations

import pytest

from llenergymeasure.redaction import MASK, redact, redact_all

TOKEN = "hf_" + "aB3" * 12


def test_token_shaped_strings_are_masked_anywhere() -> None:
    assert redact(f"--token={TOKEN} and https://u:{TOKEN}@hf.co") == (
        f"--token={MASK} and https://u:{MASK}@hf.co"
    )
    assert redact("hf_short stays") == "hf_short stays"


def test_the_value_of_a_token_variable_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", "plain-secret-value")
    monkeypatch.setenv("HF_TOKEN", "abc")  # too short to be a secret: left alone
    assert redact_all(["x=plain-secret-value", "abc"]) == [f"x={MASK}", "abc"]
