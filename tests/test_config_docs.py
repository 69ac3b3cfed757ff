"""docs/config.md is the schema's own reference: generated, and kept equal to what the code validates."""

from pathlib import Path

from tunesmith.config import section_classes
from tunesmith.config_docs import config_reference

PAGE = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def test_docs_config_md_is_up_to_date() -> None:
    assert PAGE.read_text() == config_reference(), "regenerate: tunesmith config docs --out docs/config.md"


def test_every_component_key_is_documented() -> None:
    page = config_reference()
    for kind in ("method", "task"):
        for name, cls in section_classes(kind).items():
            assert f"### `{kind}.name: {name}`" in page
            for key in cls.model_fields:
                if key != "name":
                    assert f"| `{kind}.{key}` |" in page, (kind, name, key)
