"""Every private name of a library the product relies on still exists.

The list is tutor_platform.serving.PRIVATE_NAMES; when this fails after an
upgrade, the code named in that module's docstring needs a look."""

import importlib
import inspect
import re

import pytest

from tutor_platform.serving import PRIVATE_NAMES


@pytest.mark.parametrize(("module", "owner", "name", "kind"), PRIVATE_NAMES, ids=lambda v: str(v))
def test_the_private_name_still_exists(module, owner, name, kind):
    cls = getattr(importlib.import_module(module), owner)
    if kind == "attribute":
        assert hasattr(cls, name), f"{module}.{owner}.{name} is gone"
    else:  # set on the instance by the class's own code
        source = inspect.getsource(cls)
        assert re.search(rf"\bself\.{name}\s*=", source), f"{module}.{owner} no longer sets self.{name}"
