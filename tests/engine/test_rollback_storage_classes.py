"""A rollback checks the recorded configuration as a definition is checked: with the server's own
storage classes (``LCC_STORAGE_CLASSES``) when it is given them, so a configuration LakeCircle
wrote with them can be restored."""

from __future__ import annotations

import pytest

from lakecircle.core.model import LifecycleConfig
from lakecircle.engine.cycle import Reconciler
from lakecircle.engine.history import History
from lakecircle.engine.loader import DefinitionLoader
from lakecircle.engine.rollback import rollback
from lakecircle.errors import LakeCircleError
from lakecircle.ports import BucketRef
from lakecircle.testing import MemoryS3
from tests.builders import definition, rule

pytestmark = pytest.mark.anyio

TIERED = rule("tier", 400, Transitions=[{"Days": 5, "StorageClass": "WARM"}])


async def synced_twice() -> tuple[MemoryS3, History]:
    """A bucket written with a WARM transition, then with a plain expiration."""
    s3 = MemoryS3()
    s3.add_bucket("tiered", LifecycleConfig())
    history = History(s3)
    for version in (TIERED, rule("plain", 30)):
        s3.objects["definition/tiered.toml"] = definition("tiered", version)
        loader = DefinitionLoader(s3, storage_classes=("WARM",))
        assert (await Reconciler(s3, loader, history=history).run_cycle()).writes == 1
    return s3, history


async def test_a_configuration_with_a_listed_class_is_restored_when_the_class_is_given() -> None:
    s3, history = await synced_twice()

    result = await rollback(s3, history, BucketRef("tiered"), storage_classes=("WARM",))

    assert result.applied
    assert [r.id for r in s3.lifecycles["tiered"].rules] == ["tier"]


async def test_without_the_class_the_record_is_refused_naming_it() -> None:
    s3, history = await synced_twice()

    with pytest.raises(LakeCircleError, match="LCC_STORAGE_CLASSES=WARM"):
        await rollback(s3, history, BucketRef("tiered"))
    assert [r.id for r in s3.lifecycles["tiered"].rules] == ["plain"]
