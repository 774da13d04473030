"""Where a campaign's files live under a results root, and reading its manifest.

```
<root>/campaigns/<name>/manifest.json          CampaignManifest, rewritten atomically
<root>/campaigns/<name>/configs/<config>.yaml  the resolved config of each configuration
```
"""

from __future__ import annotations

from pathlib import Path

from llenergymeasure.domain.campaign import CampaignManifest
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.layout import read_model, validate_experiment_id


def campaign_dir(results_root: Path, campaign_name: str) -> Path:
    """`<root>/campaigns/<name>`; a name that is not a plain file name is refused."""
    try:
        validate_experiment_id(campaign_name)
    except ResultsError:
        raise ResultsError(
            f"invalid campaign name {campaign_name!r}: use letters, digits, '.', '_' and '-'"
        ) from None
    return Path(results_root) / "campaigns" / campaign_name


def campaign_manifest_path(results_root: Path, campaign_name: str) -> Path:
    """`<root>/campaigns/<name>/manifest.json`."""
    return campaign_dir(results_root, campaign_name) / "manifest.json"


def configuration_file(results_root: Path, campaign_name: str, config_name: str) -> Path:
    """`<root>/campaigns/<name>/configs/<config name>.yaml`."""
    return campaign_dir(results_root, campaign_name) / "configs" / f"{config_name}.yaml"


def read_campaign_manifest(results_root: Path, campaign_name: str) -> CampaignManifest:
    """The manifest of a campaign that has started.

    Raises:
        ResultsError: no such campaign under the root, or an unreadable manifest.

    """
    path = campaign_manifest_path(results_root, campaign_name)
    if not path.is_file():
        raise ResultsError(
            f"no campaign {campaign_name} under {results_root} ({path} not found); "
            "pass --results-dir, or run llem campaign FILE first"
        )
    return read_model(path, CampaignManifest)
