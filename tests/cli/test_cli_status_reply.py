"""The status reply decoder never runs code: only builtin values load."""

from __future__ import annotations

import os
import pickle

import pytest

from coord.replication import _decode_status_reply


def test_a_status_reply_with_a_global_is_refused() -> None:
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        _decode_status_reply(pickle.dumps(os.getcwd))
    with pytest.raises(ConnectionError, match="unexpected status reply"):
        _decode_status_reply(pickle.dumps(["status"]))
    with pytest.raises(ConnectionError, match="the member answered: FAIL"):
        _decode_status_reply(pickle.dumps("FAIL coord_status"))
    assert _decode_status_reply(pickle.dumps('{"role": "leader", "term": 3}')) == {"role": "leader", "term": 3}
