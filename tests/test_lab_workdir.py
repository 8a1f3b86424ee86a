"""`analyzer.lab.prepare`, what `chatcap lab DIR` does before JupyterLab starts: copies of the
shipped notebooks with CAPTURES set, brought up to date only where nobody changed them.
(JupyterLab serving them, and a copy run on a kernel: tests/test_notebooks.py.)"""

from __future__ import annotations

import ast
import hashlib
import json
import stat
from pathlib import Path

import pytest

from analyzer.lab import MANIFEST, is_shipped, notebooks, prepare, shipped, with_captures

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["01_overview.ipynb", "02_latency.ipynb", "03_tokens_and_cost.ipynb", "04_transcripts.ipynb"]


def captures_in(path: Path) -> str:
    (cell,) = [c for c in json.loads(path.read_bytes())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    (line,) = [line for line in "".join(cell["source"]).splitlines() if line.startswith("CAPTURES = ")]
    return ast.literal_eval(line.removeprefix("CAPTURES = "))


def test_an_editable_install_ships_the_checkouts_notebooks() -> None:
    assert shipped() == ROOT / "notebooks"
    assert notebooks() == {name: (ROOT / "notebooks" / name).read_bytes() for name in NAMES}


def test_lab_copy_differs_from_the_shipped_notebook_only_in_the_captures_lines() -> None:
    odd = '/tmp/it\'s a "path" \\ with ünïcode'
    for name, content in notebooks().items():
        shipped_cells = json.loads(content)["cells"]
        copy = json.loads(with_captures(content, odd))
        assert len(copy["cells"]) == len(shipped_cells)
        for before, after in zip(shipped_cells, copy["cells"], strict=True):
            if "parameters" not in before["metadata"].get("tags", []):
                assert after == before, name
                continue
            removed = [line for line in before["source"] if line not in after["source"]]
            added = [line for line in after["source"] if line not in before["source"]]
            assert all(line.startswith(("#", "CAPTURES = ")) for line in removed + added)
            (line,) = [line for line in after["source"] if line.startswith("CAPTURES = ")]
            assert ast.literal_eval(line.removeprefix("CAPTURES = ").strip()) == odd
        assert {key: value for key, value in copy.items() if key != "cells"} == {
            key: value for key, value in json.loads(content).items() if key != "cells"
        }


def test_prepare_copies_the_notebooks_with_captures_set_into_a_private_directory(tmp_path: Path) -> None:
    lab = prepare(tmp_path / "lab", tmp_path / "captures")
    assert lab.copied == NAMES and lab.updated == lab.kept == []
    assert stat.S_IMODE((tmp_path / "lab").stat().st_mode) == 0o700
    for name in [*NAMES, MANIFEST]:
        assert stat.S_IMODE((tmp_path / "lab" / name).stat().st_mode) == 0o600
    assert all(captures_in(tmp_path / "lab" / name) == str(tmp_path / "captures") for name in NAMES)
    assert f"CAPTURES = {tmp_path / 'captures'}" in lab.report()


def test_prepare_again_changes_nothing_and_keeps_the_first_captures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare(tmp_path / "lab", tmp_path / "captures")
    before = {path.name: path.read_bytes() for path in (tmp_path / "lab").iterdir()}
    monkeypatch.chdir(tmp_path / "lab")  # another current directory: its captures/ is not taken
    lab = prepare(tmp_path / "lab")
    assert lab.copied == lab.updated == lab.kept == [] and lab.captures == tmp_path / "captures"
    assert {path.name: path.read_bytes() for path in (tmp_path / "lab").iterdir()} == before


def test_prepare_defaults_to_captures_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lab = prepare("chatcap-lab")
    assert lab.captures == tmp_path / "captures" and captures_in(tmp_path / "chatcap-lab" / NAMES[0]) == str(
        tmp_path / "captures"
    )
    assert any("does not exist yet" in line for line in lab.report())


def test_prepare_updates_a_copy_left_unchanged_since_an_older_chatcap_wrote_it(tmp_path: Path) -> None:
    prepare(tmp_path / "lab", tmp_path / "captures")
    # What an older release would have written: other text, its hash in the manifest.
    old = json.loads((tmp_path / "lab" / "02_latency.ipynb").read_bytes())
    old["cells"][0]["source"] = ["# An older version of this notebook"]
    older = json.dumps(old, indent=1).encode()
    (tmp_path / "lab" / "02_latency.ipynb").write_bytes(older)
    manifest = json.loads((tmp_path / "lab" / MANIFEST).read_bytes())
    manifest["notebooks"]["02_latency.ipynb"] = hashlib.sha256(older).hexdigest()
    (tmp_path / "lab" / MANIFEST).write_text(json.dumps(manifest))

    lab = prepare(tmp_path / "lab")
    assert lab.updated == ["02_latency.ipynb"] and lab.kept == []
    assert (tmp_path / "lab" / "02_latency.ipynb").read_bytes() == with_captures(
        notebooks()["02_latency.ipynb"], str(tmp_path / "captures")
    )


def test_prepare_keeps_a_changed_notebook_and_its_captures_when_captures_change(tmp_path: Path) -> None:
    prepare(tmp_path / "lab", tmp_path / "first")
    changed = tmp_path / "lab" / "01_overview.ipynb"
    changed.write_bytes(changed.read_bytes().replace(b"import pandas as pd", b"import pandas as pd  # mine"))
    mine = changed.read_bytes()

    lab = prepare(tmp_path / "lab", tmp_path / "second")
    assert lab.kept == ["01_overview.ipynb"] and lab.updated == NAMES[1:] and lab.copied == []
    assert changed.read_bytes() == mine and captures_in(changed) == str(tmp_path / "first")
    assert all(captures_in(tmp_path / "lab" / name) == str(tmp_path / "second") for name in NAMES[1:])
    assert any(line.startswith("kept 01_overview.ipynb as you changed it; its CAPTURES") for line in lab.report())
    # Still kept the time after: the manifest holds what chatcap wrote, not the user's version.
    assert prepare(tmp_path / "lab").kept == ["01_overview.ipynb"] and changed.read_bytes() == mine


def test_prepare_keeps_a_notebook_of_the_same_name_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "04_transcripts.ipynb").write_text("mine")
    lab = prepare(tmp_path / "lab", tmp_path / "captures")
    assert lab.kept == ["04_transcripts.ipynb"] and lab.copied == NAMES[:3]
    assert (tmp_path / "lab" / "04_transcripts.ipynb").read_text() == "mine"


def test_prepare_restores_a_deleted_notebook(tmp_path: Path) -> None:
    prepare(tmp_path / "lab", tmp_path / "captures")
    (tmp_path / "lab" / "03_tokens_and_cost.ipynb").unlink()
    assert prepare(tmp_path / "lab").copied == ["03_tokens_and_cost.ipynb"]


def test_prepare_refuses_to_write_into_chatcaps_own_notebooks() -> None:
    before = {path.name: path.read_bytes() for path in (ROOT / "notebooks").iterdir()}
    assert is_shipped(ROOT / "notebooks") and is_shipped(ROOT / "tests" / ".." / "notebooks")
    with pytest.raises(ValueError, match="chatcap's own notebooks"):
        prepare(ROOT / "notebooks", ROOT / "captures")
    assert {path.name: path.read_bytes() for path in (ROOT / "notebooks").iterdir()} == before


def test_prepare_refuses_a_symlinked_notebook(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    (tmp_path / "target").write_text("not chatcap's")
    (tmp_path / "lab" / "01_overview.ipynb").symlink_to(tmp_path / "target")
    lab = prepare(tmp_path / "lab", tmp_path / "captures")
    assert lab.kept == ["01_overview.ipynb"] and (tmp_path / "target").read_text() == "not chatcap's"
