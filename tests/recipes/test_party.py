"""Party and ShallowParty (modelled on kazoo's test_party.py) with the
participants spread over the members of a real 3-member cluster."""

from __future__ import annotations

import uuid

import pytest
from helpers import InProcessCluster, wait_until

from coord.recipes import Party, ShallowParty

from ._support import running_cluster

pytestmark = pytest.mark.cluster


def _path() -> str:
    return "/" + uuid.uuid4().hex


@pytest.mark.parametrize("kind", [Party, ShallowParty])
def test_party_across_members(shared_cluster: InProcessCluster, kind: type[Party] | type[ShallowParty]) -> None:
    path = _path()
    parties = [kind(shared_cluster.members[i % 3], path, f"p{i}") for i in range(5)]
    assert list(parties[0]) == []
    assert len(parties[0]) == 0
    participants: set[str] = set()
    for party in parties:
        party.join()
        assert party.participating
        participants.add(party.data.decode("utf-8"))
        party.client.sync()  # see the joins made through the other members
        assert set(party) == participants
        assert len(party) == len(participants)
    for party in parties:
        assert party.leave() is True
        assert not party.participating
        participants.remove(party.data.decode("utf-8"))
        party.client.sync()
        assert set(party) == participants
        assert len(party) == len(participants)


def test_party_join_is_idempotent_and_reuses_its_node(shared_cluster: InProcessCluster) -> None:
    member = shared_cluster.members[0]
    party = member.Party(_path(), "p1")
    assert isinstance(party, Party)
    member.ensure_path(party.path)
    member.create(party.create_path)
    party.join()
    assert party.participating is True
    party.join()
    assert len(party) == 1
    party.leave()
    assert party.participating is False
    assert len(party) == 0


def test_party_vanishing_node(shared_cluster: InProcessCluster) -> None:
    owner, other = shared_cluster.members[1], shared_cluster.members[2]
    party = Party(owner, _path(), "p1")
    party.join()
    assert party.participating is True
    other.sync()
    other.delete(party.create_path)
    owner.sync()
    assert party.leave() is False
    assert party.participating is False
    assert len(party) == 0


def test_a_stopped_members_participants_leave_by_themselves() -> None:
    with running_cluster() as own:
        path = _path()
        staying = ShallowParty(own.members[0], path, "stays")
        going = ShallowParty(own.members[1], path, "goes")
        staying.join()
        going.join()
        own.members[0].sync()
        assert sorted(staying) == ["goes", "stays"]
        own.members[1].stop()  # its session closes: its ephemeral participant goes
        wait_until(lambda: list(staying) == ["stays"], 10, what="the stopped member to leave the party")


def test_party_bad_arguments(shared_cluster: InProcessCluster) -> None:
    with pytest.raises(TypeError, match="identifier"):
        Party(shared_cluster.members[0], "/p", 7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'/'"):
        ShallowParty(shared_cluster.members[0], "/p", "a/b")
