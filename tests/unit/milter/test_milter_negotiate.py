"""negotiate(): the filter's answer to the MTA's offer picks only what was offered,
insists on the actions it needs, and drops the wishes the MTA cannot grant."""

from __future__ import annotations

from typing import Any

import pytest

from mailseal.frontends.milter import (
    SMFIF,
    SMFIM,
    SMFIP,
    MilterCodec,
    MilterNegotiationError,
    MilterProtocolError,
    OptionNegotiate,
    OptionNegotiateReply,
    negotiate,
)

POSTFIX = OptionNegotiate(version=6, actions=0x1FF, protocol=0x1FFFFF)
# Sendmail 8.14+ with Milter.maxdatasize=1M announces SMFIP_MDS_1M on top.
SENDMAIL_1M = OptionNegotiate(version=6, actions=0x1FF, protocol=0x1FFFFF | SMFIP.MDS_1M)
# An MTA speaking version 2 knows only the first seven steps and four actions.
OLD = OptionNegotiate(version=2, actions=0x0F, protocol=0x7F)

NEEDS = SMFIF.ADDHDRS | SMFIF.CHGHDRS


def test_postfix_offer_grants_everything_asked() -> None:
    reply = negotiate(POSTFIX, actions=NEEDS, skip_steps=SMFIP.NOUNKNOWN,
                      no_reply=SMFIP.NR_HDR | SMFIP.NR_CONN,
                      options=SMFIP.HDR_LEADSPC | SMFIP.MDS_1M)
    assert reply == OptionNegotiateReply(
        version=6, actions=NEEDS,
        protocol=SMFIP.NOUNKNOWN | SMFIP.NR_HDR | SMFIP.NR_CONN | SMFIP.HDR_LEADSPC)
    assert type(reply.actions) is int
    assert type(reply.protocol) is int


def test_protocol_is_a_subset_of_the_offer() -> None:
    reply = negotiate(OLD, actions=SMFIF.ADDHDRS, skip_steps=SMFIP.NOHELO | SMFIP.NODATA,
                      no_reply=SMFIP.NR_HDR | SMFIP.NR_BODY,
                      options=SMFIP.HDR_LEADSPC | SMFIP.SKIP)
    assert reply.protocol == SMFIP.NOHELO
    assert reply.protocol & ~OLD.protocol == 0


@pytest.mark.parametrize(("offered", "version"), [(2, 2), (4, 4), (6, 6), (7, 6), (99, 6)])
def test_version_is_the_lower_one(offered: int, version: int) -> None:
    offer = OptionNegotiate(version=offered, actions=0x1FF, protocol=0x1FFFFF)
    assert negotiate(offer, actions=0).version == version


@pytest.mark.parametrize("offered", [0, 1])
def test_too_old_an_mta_is_refused(offered: int) -> None:
    with pytest.raises(MilterNegotiationError, match=f"version {offered} is below 2"):
        negotiate(OptionNegotiate(offered, 0x1FF, 0x1FFFFF), actions=0)


def test_missing_action_is_refused_by_name() -> None:
    offer = OptionNegotiate(6, SMFIF.ADDHDRS | SMFIF.QUARANTINE, 0x1FFFFF)
    with pytest.raises(MilterNegotiationError, match=r"actions CHGHDRS$"):
        negotiate(offer, actions=NEEDS)
    with pytest.raises(MilterProtocolError):  # the negotiation error is a protocol error
        negotiate(offer, actions=SMFIF.CHGFROM | SMFIF.CHGBODY)


def test_zero_offer_means_version_1_sets() -> None:
    offer = OptionNegotiate(6, 0, 0)
    reply = negotiate(offer, actions=SMFIF.ADDHDRS | SMFIF.DELRCPT,
                      skip_steps=SMFIP.NOHELO | SMFIP.NOUNKNOWN, no_reply=SMFIP.NR_HDR)
    assert reply.protocol == SMFIP.NOHELO
    with pytest.raises(MilterNegotiationError, match="QUARANTINE"):
        negotiate(offer, actions=SMFIF.QUARANTINE)


@pytest.mark.parametrize(("offered", "granted"), [
    (SMFIP.MDS_1M, SMFIP.MDS_1M),
    (SMFIP.MDS_256K, SMFIP.MDS_256K),
    (SMFIP.MDS_256K | SMFIP.MDS_1M, SMFIP.MDS_1M),
    (0, 0),
])
def test_data_size_echoes_the_largest_offered(offered: int, granted: int) -> None:
    offer = OptionNegotiate(6, 0x1FF, 0x1FFFFF | offered)
    reply = negotiate(offer, actions=0, options=SMFIP.MDS_256K | SMFIP.MDS_1M)
    assert reply.protocol == granted


def test_data_size_not_wished_is_not_echoed() -> None:
    assert negotiate(SENDMAIL_1M, actions=0).protocol == 0


def test_macro_lists_when_offered() -> None:
    reply = negotiate(POSTFIX, actions=NEEDS, macros={
        SMFIM.EOM: ["i"],
        SMFIM.CONNECT: ("j", "{daemon_name}", "{client_addr}"),
        SMFIM.ENVFROM: ["{auth_authen}"],
        SMFIM.EOH: [],
    })
    assert reply.actions == NEEDS | SMFIF.SETSYMLIST
    assert reply.macros == (
        (SMFIM.CONNECT, ("j", "{daemon_name}", "{client_addr}")),
        (SMFIM.ENVFROM, ("{auth_authen}",)),
        (SMFIM.EOM, ("i",)),
        (SMFIM.EOH, ()),
    )


def test_macro_lists_dropped_when_not_offered() -> None:
    offer = OptionNegotiate(6, 0x0FF, 0x1FFFFF)
    reply = negotiate(offer, actions=NEEDS, macros={SMFIM.CONNECT: ["j"]})
    assert reply.macros == ()
    assert reply.actions == NEEDS


def test_no_macros_no_symlist() -> None:
    assert negotiate(POSTFIX, actions=NEEDS, macros={}).actions == NEEDS


@pytest.mark.parametrize(("kwargs", "what"), [
    ({"actions": 0x200}, "actions"),
    ({"actions": 0, "skip_steps": SMFIP.NR_HDR}, "skip_steps"),
    ({"actions": 0, "no_reply": SMFIP.NOHELO}, "no_reply"),
    ({"actions": 0, "options": SMFIP.NOBODY}, "options"),
    ({"actions": 0, "options": 0x40000000}, "options"),
])
def test_bits_must_belong_to_their_argument(kwargs: dict[str, Any], what: str) -> None:
    with pytest.raises(ValueError, match=f"^{what} holds bits"):
        negotiate(POSTFIX, **kwargs)


def test_reply_is_accepted_by_the_codec_for_any_sane_offer() -> None:
    for offer in (POSTFIX, SENDMAIL_1M, OLD, OptionNegotiate(3, 0, 0)):
        codec = MilterCodec()
        codec.receive_data(b"\x00\x00\x00\x0dO" + offer.version.to_bytes(4, "big")
                           + offer.actions.to_bytes(4, "big")
                           + offer.protocol.to_bytes(4, "big"))
        assert codec.next_event() == offer
        reply = negotiate(offer, actions=SMFIF.ADDHDRS, skip_steps=0x37F,
                          no_reply=0xFF080, options=0x30100C00,
                          macros={SMFIM.CONNECT: ["j"]})
        codec.send(reply)
        assert codec.negotiated == reply
