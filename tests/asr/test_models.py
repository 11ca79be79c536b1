from pathlib import Path

import pytest

from asr import AsrError, bundled_model_path, load_model, usable_phrases


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AsrError, match="does not exist"):
        load_model(tmp_path / "nowhere")


def test_a_directory_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "README").write_text("not a model")
    with pytest.raises(AsrError, match="not a vosk model"):
        load_model(tmp_path)
    with pytest.raises(AsrError, match="not a vosk model"):
        load_model(tmp_path / "README")


def test_model_is_loaded_once_per_resolved_path(model_path: Path) -> None:
    first = load_model(model_path)
    again = load_model(model_path / ".." / model_path.name)
    assert again is first


def test_bundled_model_path_is_the_package_model(model_path: Path) -> None:
    path = bundled_model_path()
    assert path is not None and (path / "am" / "final.mdl").is_file()


def test_usable_phrases_drops_words_outside_the_vocabulary(model_path: Path) -> None:
    model = load_model(model_path)
    kept, dropped = usable_phrases(model, [" 판매", "상담", "기술  지원", "sales", "기술 sales", "[unk]", "", "판매"])
    assert kept == ["판매", "상담", "기술 지원"]
    assert dropped == ["sales", "기술 sales", "[unk]", ""]


def test_usable_phrases_lower_cases(model_path: Path) -> None:
    model = load_model(model_path)
    kept, dropped = usable_phrases(model, ["SALES"])
    assert (kept, dropped) == ([], ["sales"])
