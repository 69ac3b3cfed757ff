"""A folder replaced by `replace_folder` is either the old one or the new one, even when the process dies
between its two renames: `restore_replaced` puts the old one back."""

from pathlib import Path

import pytest

from tunesmith.files import replace_folder, restore_replaced


def make(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "weights.txt").write_text(text)
    return path


def test_a_kill_between_the_renames_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final, tmp = make(tmp_path / "final", "old"), make(tmp_path / ".tmp-final", "new")
    real = Path.rename

    def killed_on_second_rename(self: Path, target: Path) -> Path:
        if self == tmp:
            raise KeyboardInterrupt  # the kill lands after final/ moved aside, before the new one arrived
        return real(self, target)

    monkeypatch.setattr(Path, "rename", killed_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(tmp, final)
    monkeypatch.setattr(Path, "rename", real)
    assert not final.exists() and (tmp_path / ".old-final").is_dir()
    assert restore_replaced(final) == "restored final/ (its replacement was never completed)"
    assert (final / "weights.txt").read_text() == "old" and not (tmp_path / ".old-final").exists()
    assert restore_replaced(final) is None


def test_a_completed_replacement_wins_over_a_leftover_old_copy(tmp_path: Path) -> None:
    final, old = make(tmp_path / "final", "new"), make(tmp_path / ".old-final", "old")
    assert restore_replaced(final) is None
    assert (final / "weights.txt").read_text() == "new" and not old.exists()
