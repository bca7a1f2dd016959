"""Which key may speak under which name (protocol/access.py), the router core's use of it, and
the ZAP handler's answers (router/auth.py): no sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from zmq.utils import z85

from zmqswarm.protocol import Code, Hello, Nack, Send, SendItem, decode, encode
from zmqswarm.protocol.access import Access, name_of
from zmqswarm.protocol.frames import PROTOCOL_VERSION
from zmqswarm.protocol.router_core import RouterCore
from zmqswarm.router.auth import zap_reply
from zmqswarm.transport import routing_id

KEYS = ["alice", "bob", "eve"]
NAMES = ["alice", "alice.2", "bob", "bob.x", "eve", "zs-admin-7", "mallory"]


def kid(name: str) -> str:
    """A stand-in for a key's Z85 text (the frame's User-Id)."""
    return f"K-{name}"


def trusting(*names: str, config: dict[str, list[str]] | None = None) -> Access:
    access = Access(config)
    access.keys = {kid(n): n for n in names}
    return access


def rid(name: str, epoch: int = 0x10) -> bytes:
    return routing_id(name, epoch, "0123456789abcdef")


def test_a_routing_id_without_its_secret_is_refused() -> None:
    """With ROUTER_HANDOVER any key that may use a name could take over an id it can guess."""
    access = trusting("bob")
    for bare in (
        routing_id("bob", 0x10),
        routing_id("bob", 0x10, "abc"),
        b"bob/10.0123456789ABCDEF",
    ):
        refusal = access.admit(bare, kid("bob"))
        assert (
            refusal is not None and refusal.reason == "not_allowed" and "SECRET" in refusal.detail
        )
    assert access.admit(rid("bob"), kid("bob")) is None


def test_a_key_may_use_its_own_names_and_the_admin_ones() -> None:
    access = Access()
    assert access.permits("alice", "alice") and access.permits("alice", "alice.runner")
    assert access.permits("alice", "zs-admin-42")
    assert not access.permits("alice", "bob") and not access.permits("alice", "alice2")


def test_the_config_names_replace_the_default() -> None:
    access = Access({"ci": ["runner-*", "build"]})
    assert access.permits("ci", "runner-3") and access.permits("ci", "build")
    assert not access.permits("ci", "ci")


def test_a_routing_id_is_bound_to_the_first_key_that_may_use_it() -> None:
    access = trusting("alice", "eve", config={"alice": ["alice", "shared"]})
    assert access.admit(rid("alice"), kid("alice")) is None
    refusal = access.admit(rid("alice"), kid("eve"))  # a handover by another key
    assert refusal is not None and refusal.reason == "not_allowed"
    assert "bound to key 'alice'" in refusal.detail
    assert access.admit(rid("alice"), kid("alice")) is None  # the holder still passes


def test_a_revoked_key_passes_nothing_and_a_new_key_under_its_name_is_another_key() -> None:
    access = trusting("bob")
    access.admit(rid("bob"), kid("bob"))
    assert access.revoke(kid("bob")) == [rid("bob")]
    refusal = access.admit(rid("bob"), kid("bob"))
    assert refusal is not None and refusal.reason == "revoked"
    access.keys["K-bob-rotated"] = "bob"  # the file replaced: the new key, the same name
    assert access.admit(rid("bob", 0x11), "K-bob-rotated") is None
    assert access.admit(rid("bob", 0x12), kid("bob")) is not None  # the old one stays out


@given(
    st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(KEYS), st.booleans()), max_size=60)
)
def test_no_frame_passes_under_a_name_its_key_may_not_use(
    steps: list[tuple[str, str, bool]],
) -> None:
    """Whatever the order of frames, revocations and re-trusts: a frame passes only if its
    key is trusted and its name may use the routing id's name."""
    access = trusting(*KEYS, config={"bob": ["bob", "bob.*", "mallory"]})
    for peer, key, toggle in steps:
        if toggle:
            if kid(key) in access.keys:
                access.revoke(kid(key))
            else:
                access.keys[kid(key)] = key
            continue
        passed = access.admit(rid(peer), kid(key)) is None
        assert passed == (kid(key) in access.keys and access.permits(key, peer))
        assert name_of(rid(peer)) == peer


# -- the router core -------------------------------------------------------------------------


def secured_core() -> RouterCore:
    return RouterCore(epoch=1, access=trusting("alice", "bob", "eve"))


def hello(name: str, epoch: int = 0x10) -> list[bytes]:
    return [encode(Hello(PROTOCOL_VERSION, name, epoch, 16))]


def nacks(core: RouterCore) -> list[tuple[bytes, int]]:
    out = []
    for identity, parts, _ in core.take_output(0.0):
        frame = decode(parts[0])
        if isinstance(frame, Nack):
            out.append((identity, frame.code))
    return out


def test_a_frame_under_a_name_the_key_may_not_use_is_refused_and_counted() -> None:
    core = secured_core()
    core.admit(rid("bob"), kid("eve"), hello("bob"), 0.0)
    assert nacks(core) == [(rid("bob"), Code.NOT_ALLOWED)]
    assert core.stats["refused_not_allowed"] == 1
    assert core.sessions.get(rid("bob")) is None


def test_a_hello_must_name_the_routing_ids_name() -> None:
    core = secured_core()
    core.admit(rid("eve"), kid("eve"), hello("bob"), 0.0)  # a permitted id, another name inside
    assert nacks(core) == [(rid("eve"), Code.NOT_ALLOWED)]
    assert core.sessions.get(rid("eve")) is None


def test_a_message_from_a_refused_frame_reaches_no_mailbox() -> None:
    core = secured_core()
    core.admit(rid("alice"), kid("alice"), hello("alice"), 0.0)
    core.take_output(0.0)
    send = [encode(Send(1, [SendItem(1, "bob")])), b"hostile"]
    core.admit(rid("alice"), kid("eve"), send, 0.0)
    assert core.stats["accepted"] == 0 and core.stats["refused_not_allowed"] == 1


def test_revoking_a_key_ends_its_sessions_and_refuses_its_frames() -> None:
    core = secured_core()
    core.admit(rid("bob"), kid("bob"), hello("bob"), 0.0)
    core.take_output(0.0)
    assert core.revoke(kid("bob"), 1.0) == 1
    assert core.sessions.get(rid("bob")) is None
    assert nacks(core) == [(rid("bob"), Code.REVOKED)]
    core.admit(rid("bob"), kid("bob"), hello("bob", 0x11), 1.0)
    assert core.stats["refused_revoked"] == 1


# -- the ZAP handler -------------------------------------------------------------------------

DOMAIN = b"zmqswarm"
KEY = bytes(range(32))


def request(
    mechanism: bytes = b"CURVE", *credentials: bytes, domain: bytes = DOMAIN
) -> list[bytes]:
    return [b"1.0", b"7", domain, b"127.0.0.1", b"", mechanism, *credentials]


def test_zap_lets_a_listed_key_in_under_its_name() -> None:
    reply = zap_reply(request(b"CURVE", KEY), DOMAIN, {z85.encode(KEY).decode(): "alice"})
    assert reply == [b"1.0", b"7", b"200", b"OK", z85.encode(KEY), b""]


def test_zap_refuses_everything_else() -> None:
    listed = {z85.encode(KEY).decode(): "alice"}
    for req in (
        request(b"CURVE", bytes(32)),  # unknown key
        request(b"NULL"),
        request(b"PLAIN", b"alice", b"pw"),
        request(b"CURVE", KEY, domain=b"other"),
        request(b"CURVE", KEY[:31]),
        [b"2.0", b"7", DOMAIN, b"", b"", b"CURVE", KEY],
    ):
        reply = zap_reply(req, DOMAIN, listed)
        assert reply[2] == b"400" and reply[4] == b"", req
    assert zap_reply([b"1.0"], DOMAIN, listed)[2] == b"400"


def test_which_binds_other_hosts_can_reach() -> None:
    from zmqswarm.router.endpoints import exposed

    for url in ("tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:2", "ipc:///tmp/x"):
        assert not exposed(url), url
    for url in ("tcp://0.0.0.0:5555", "tcp://*:1", "tcp://10.0.0.1:2", "tcp://localhost.example:3"):
        assert exposed(url), url
