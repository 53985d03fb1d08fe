"""The provider survey (issue 24, Directive 23/CT-TTg, ``docs/adr/0034-isp-survey.md``).

An Internet provider's agent sweeps the prefixes a signed ``survey.sweep`` command (or the
one-off ``camwarden-agent survey``) names, on the camera ports, and records what each answering
device shows to anyone: no credential is ever sent, no login is ever tried.

``rate`` paces packets and connections; ``probe`` learns one host (open ports, identity from
banners, login pages, pre-auth ONVIF, certificates and RTSP, and the exposures with their
evidence); ``sweep`` runs a shard within its scope and deadlines and cuts the findings into
``protocol.messages.SurveyResult`` parts. Every packet goes through ``agent.scope`` confined to
the command's prefixes, and every address is checked against ``protocol.survey.Scope`` (prefixes
less exclusions and opt-outs) before its first packet.
"""
