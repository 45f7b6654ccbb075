"""``PersonTexts``: a text per person read from a frame's column, a batch or one at a time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.provisioning.plan_table import PersonTexts


def test_texts_come_from_the_column_by_batch_or_one_by_one_with_none_past_it_and_set_values_first() -> None:
    column = pd.Series(["a@x", None, "", "d@x"], dtype="str")
    texts = PersonTexts(column, 6)  # persons 4 and 5 have no row (mapped-only users)
    assert [texts[p] for p in range(6)] == ["a@x", None, "", "d@x", None, None]
    assert texts.missing(np.arange(6)).tolist() == [False, True, False, False, True, True]
    texts.load(np.array([0, 3, 5]))
    assert [texts[p] for p in (0, 3, 5)] == ["a@x", "d@x", None]
    texts[1] = "b@x"
    texts[5] = "f@x"
    texts[0] = None
    assert [texts[p] for p in range(6)] == [None, "b@x", "", "d@x", None, "f@x"]
    assert texts.missing(np.arange(6)).tolist() == [True, False, False, False, True, False]
    assert len(texts) == 6 and [PersonTexts.of(["x", None])[p] for p in (0, 1)] == ["x", None]
