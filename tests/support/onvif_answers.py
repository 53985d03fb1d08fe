"""Canned ONVIF device-service answers for hostile-camera tests and the flood bench."""

from __future__ import annotations

NS = (
    'xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" '
    'xmlns:tt="http://www.onvif.org/ver10/schema"'
)
CLOCK = (
    "<tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
    "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ>"
    "</tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>1</tt:Hour><tt:Minute>2</tt:Minute>"
    "<tt:Second>3</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>12</tt:Month>"
    "<tt:Day>7</tt:Day></tt:Date></tt:UTCDateTime></tds:SystemDateAndTime>"
)
INFO = (
    "<tds:Manufacturer>ACME</tds:Manufacturer><tds:Model>{model}</tds:Model>"
    "<tds:FirmwareVersion>V5.7.3</tds:FirmwareVersion><tds:SerialNumber>SN1</tds:SerialNumber>"
    "<tds:HardwareId>HW1</tds:HardwareId>"
)


def envelope(op: str, inner: str, prolog: str = '<?xml version="1.0" encoding="UTF-8"?>') -> str:
    return (
        f"{prolog}<env:Envelope {NS}><env:Body><tds:{op}Response>{inner}"
        f"</tds:{op}Response></env:Body></env:Envelope>"
    )
