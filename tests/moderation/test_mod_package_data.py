"""The moderation data the package loads at run time (model weights, word lists, their licences) is in the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_wheel_carries_the_model_and_the_word_lists(tmp_path: Path) -> None:
    # build isolation: the wheel is built as pip builds it for an install (setuptools >= 77 from PyPI, cached)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("onair-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {"moderation/hatemodel/hate_model.json.gz", "moderation/hatemodel/ATTRIBUTION.md",
                "moderation/languages/wordlists/PROVENANCE.md",
                "moderation/languages/wordlists/LICENSE-LDNOOBW-CC-BY-4.0",
                *(f"moderation/languages/wordlists/{c}.txt" for c in "ar de es fr hi it nl pl pt zh".split())}
    assert expected <= names, sorted(expected - names)
    model = zipfile.ZipFile(wheel).getinfo("moderation/hatemodel/hate_model.json.gz")
    assert model.file_size <= 20 * 1024 * 1024
