"""`epochs: auto` for tables: ~8,000 steps below 2,000 training rows, the engine's ~4,000 from there."""

from dlpipe.core.config import RunConfig
from dlpipe.pipeline._fit import TableRecipe, default_steps
from dlpipe.pipeline.settings import auto_epochs, resolve_settings


def test_small_tables_aim_at_twice_the_steps():
    assert default_steps(1_999) == 8_000 and default_steps(2_000) == 4_000
    recipe = TableRecipe()
    # mnist8: 1,278 training rows in batches of 32 -> 40 steps an epoch
    assert recipe.auto_epochs(1_278, 32) == 200 and auto_epochs(1_278, 32) == 100
    assert recipe.auto_epochs(5_000, 64) == auto_epochs(5_000, 64) == 51
    assert recipe.auto_epochs(96, 32) == 1_000  # the cap, as before
    assert resolve_settings(RunConfig(), recipe, 1_278).epochs == 200
