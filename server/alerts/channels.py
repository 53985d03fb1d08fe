"""Delivery channels: signed JSON webhooks and e-mail over SMTP (optionally STARTTLS).

Webhook requests carry ``X-Camwarden-Timestamp`` (Unix seconds) and ``X-Camwarden-Signature:
sha256=<hex>``, the HMAC-SHA256 under the route's secret of ``timestamp + "." + body``: the
receiver recomputes it over the raw body and rejects old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx

from server.config import SmtpConfig

SIGNATURE_HEADER = "X-Camwarden-Signature"
TIMESTAMP_HEADER = "X-Camwarden-Timestamp"


class DeliveryFailed(Exception):
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def send_webhook(
    url: str, secret: str, payload: dict[str, Any], now: datetime, timeout: float
) -> None:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        "User-Agent": "camwarden-alerts/1",
    }
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"HTTP {response.status_code} from the webhook")


def send_email(config: SmtpConfig, recipients: list[str], subject: str, text: str) -> None:
    if not config.host:
        raise DeliveryFailed("no SMTP server configured ([alerts.smtp] host)")
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(text)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            if config.starttls:
                context = ssl.create_default_context(cafile=config.ca_file or None)
                smtp.starttls(context=context)
            if config.username:
                smtp.login(config.username, config.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
