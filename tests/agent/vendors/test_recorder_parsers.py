"""The recorder channel parsers (pure): Hikvision ``InputProxyChannelList`` with its status
list, Dahua ``RemoteDevice`` with ``getCameraState``; what they keep, what they refuse, and that
a stored password is only ever noted, never kept."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from agent.vendors.dahua.parsers import parse_kv, parse_remote_devices
from agent.vendors.hikvision.parsers import channel_document, parse_input_proxy

NS = 'xmlns="http://www.hikvision.com/ver20/XMLSchema"'
CHANNEL = """<InputProxyChannel><id>{n}</id><sourceInputPortDescriptor>
<proxyProtocol>HIKVISION</proxyProtocol><ipAddress>192.168.254.{n}</ipAddress>
<managePortNo>8000</managePortNo><userName>admin</userName>{extra}
<model>DS-2CD2386G2-IU</model><serialNumber>DS-2CD2386G2-IU00000000AAWRK0000000{n}</serialNumber>
<firmwareVersion>V5.7.15 build 240201</firmwareVersion></sourceInputPortDescriptor>
</InputProxyChannel>"""


def listing(*channels: str) -> bytes:
    return f"<InputProxyChannelList {NS}>{''.join(channels)}</InputProxyChannelList>".encode()


STATUS = f"""<InputProxyChannelStatusList {NS}>
<InputProxyChannelStatus><id>1</id><online>true</online></InputProxyChannelStatus>
<InputProxyChannelStatus><id>2</id><online>false</online></InputProxyChannelStatus>
</InputProxyChannelStatusList>""".encode()


def test_hikvision_channels_with_their_state() -> None:
    body = listing(CHANNEL.format(n=1, extra=""), CHANNEL.format(n=2, extra=""))
    first, second = parse_input_proxy(body, STATUS)
    assert dataclasses.astuple(first) == (
        1,
        "192.168.254.1",
        8000,
        "HIKVISION",
        "admin",
        "DS-2CD2386G2-IU",
        "DS-2CD2386G2-IU00000000AAWRK00000001",
        None,
        "V5.7.15 build 240201",
        True,
        False,
        "1",
    )
    assert (second.online, second.password_shown) == (False, False)
    assert parse_input_proxy(body, None)[0].online is None  # no status list: unknown
    shown = parse_input_proxy(listing(CHANNEL.format(n=3, extra="<password>x1</password>")), None)
    assert shown[0].password_shown
    assert "x1" not in repr(shown[0])


@pytest.mark.parametrize(
    "body",
    [
        b"<UserList/>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><InputProxyChannelList/>',
        listing("<InputProxyChannel><id>1</id></InputProxyChannel>"),
        listing("<InputProxyChannel><id>one</id><sourceInputPortDescriptor/></InputProxyChannel>"),
    ],
)
def test_hikvision_bodies_that_are_no_channel_list_are_refused(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # the adapter turns it into BadResponse
        parse_input_proxy(body, None)


REMOTE = (
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.Address=192.168.1.108\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.DeviceType=IPC-HDW2431T\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.Enable=true\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.Password=Secret-1!\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.Port=37777\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.ProtocolType=Dahua\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.SerialNo=6G0ABCDE\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.UserName=admin\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_0.VideoInputs[0].Name=Gate\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_3.Address=192.168.1.111\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_3.Enable=true\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_3.Password=\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_5.Address=192.168.1.113\r\n"
    b"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_5.Enable=false\r\n"
)
STATES = b"states[0].channel=0\r\nstates[0].connectionState=Connected\r\n" + (
    b"states[1].channel=3\r\nstates[1].connectionState=Unconnect\r\n"
)


def test_dahua_remote_devices_note_the_password_and_drop_disabled_blocks() -> None:
    first, fourth = parse_remote_devices(parse_kv(REMOTE), parse_kv(STATES))
    assert (first.number, first.address, first.port, first.serial) == (
        1,
        "192.168.1.108",
        37777,
        "6G0ABCDE",
    )
    assert (first.online, first.password_shown, first.username) == (True, True, "admin")
    assert "Secret-1!" not in repr(first)
    assert (fourth.number, fourth.online, fourth.password_shown) == (4, False, False)
    assert parse_remote_devices(parse_kv(REMOTE), None)[0].online is None
    assert parse_remote_devices({"table.General.MachineName": "x"}, None) == ()


def test_the_hikvision_channel_document_carries_the_new_login_and_nothing_else_changes() -> None:
    """``PUT .../InputProxy/channels/<id>`` gets the channel as the recorder listed it, with
    ``userName`` and ``password`` (escaped) set in its ``sourceInputPortDescriptor``."""
    body = listing(CHANNEL.format(n=1, extra=""), CHANNEL.format(n=2, extra=""))
    document = channel_document(body, "2", "admin", "N3w&<pass>")
    root = ET.fromstring(document)  # noqa: S314  # our own output
    assert root.tag == "{http://www.hikvision.com/ver20/XMLSchema}InputProxyChannel"
    ns = {"h": "http://www.hikvision.com/ver20/XMLSchema"}
    source = root.find("h:sourceInputPortDescriptor", ns)
    assert source is not None
    assert root.findtext("h:id", namespaces=ns) == "2"
    assert source.findtext("h:password", namespaces=ns) == "N3w&<pass>"
    assert source.findtext("h:userName", namespaces=ns) == "admin"
    assert source.findtext("h:ipAddress", namespaces=ns) == "192.168.254.2"
    (again,) = parse_input_proxy(listing(document.split(b"?>", 1)[1].decode()), None)
    assert (again.number, again.model, again.password_shown) == (2, "DS-2CD2386G2-IU", True)
    with pytest.raises(ValueError, match="no IP channel 9"):
        channel_document(body, "9", "admin", "x")
