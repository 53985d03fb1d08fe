"""Small async network probes for the checks that need no vendor adapter.

Each module speaks one protocol to one address, bounded by a timeout and a response-size cap.
Failures use the camera error tree of ``agent.vendors.base``::

    Unreachable   connection refused or reset, no route: the service is off or the host is down
    Timeout       no complete answer within the timeout
    BadResponse   an answer that does not parse, is oversized or is not the protocol expected

Nothing here sends a password in the clear: the RTSP client answers Digest challenges only, and
the other probes send no credentials at all (SNMP community strings are the well-known defaults
the baseline asks about). Heavy libraries (httpx, cryptography) are imported where used.
"""
