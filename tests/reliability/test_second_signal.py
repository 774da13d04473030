"""A second SIGTERM ends `llem run` at once, even while it is stuck in a native call.

The fault driver sends SIGTERM to the run as it is about to write its result and then
keeps the main thread in one long matrix power (tens of seconds, the GIL released, as
the prefill of a huge prompt): Python cannot run the handler of the first signal until
that call returns. The second SIGTERM must end the run within seconds, exit code 143,
the experiment marked interrupted, no marker written.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from faults import DRIVER, quick_config_dict
from llem_testing import LineReader, write_yaml

PROMPT_S = 10.0


def test_a_second_sigterm_ends_a_run_stuck_in_native_code(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "quick.yaml", quick_config_dict(tmp_path / "results"))
    command = [sys.executable, str(DRIVER), "--at", "process_0.json:before", "--do", "stall"]
    proc = subprocess.Popen(
        [*command, "--", "run", str(config)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = LineReader(proc.stderr)
    reader.wait_for("stalling", timeout_s=120)
    time.sleep(2.0)
    assert proc.poll() is None, "the first SIGTERM ended the run: nothing was stuck"
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = proc.wait(timeout=120)
    waited_s = time.monotonic() - sent
    output = reader.finish()
    assert code == 143, output
    assert waited_s < PROMPT_S, f"ended {waited_s:.1f} s after the second signal\n{output}"
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    manifest = orjson.loads((experiment_dir / "experiment.json").read_bytes())
    assert manifest["status"] == "interrupted"
    assert manifest["error"] == "interrupted by SIGTERM (a second signal)"
    assert not list(experiment_dir.glob(".completed_*"))
    assert "interrupted by a second SIGTERM" in output
