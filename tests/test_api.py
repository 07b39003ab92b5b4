"""The top-level package re-exports its public API, lazily."""

import subprocess
import sys

import pytest

import qdgs


@pytest.mark.parametrize("name", qdgs.__all__)
def test_every_exported_name_resolves_to_its_home(name):
    value = getattr(qdgs, name)
    home = qdgs._HOME[name]
    assert value is getattr(__import__(home, fromlist=[name]), name)


def test_import_is_light_and_unknown_names_are_attribute_errors():
    code = "import sys, qdgs; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    with pytest.raises(AttributeError, match="no attribute 'PromptScorer'"):
        qdgs.PromptScorer  # noqa: B018
