"""The collector's command key: Ed25519, ``<state_dir>/collector.key`` (PKCS#8 PEM, mode 0600).

It signs what the collector sends to agents: end-to-end acknowledgements today, commands
(rollouts, password rotation) later. Agents pin its public JWK from the enrollment answer, so
every collector process of one fleet must use the same key file (copy it; never regenerate it).
``camwarden-server migrate`` and ``run`` create it when it is missing. The private key never
leaves this host and is never logged; only its kid is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from joserfc.jwk import OKPKey

from protocol import generate_private_key, import_private_pem, private_pem
from service.files import write_private

log = logging.getLogger(__name__)

KEY_FILE = "collector.key"


class CommandKeyError(Exception):
    """The command key file exists but cannot be read, or cannot be created."""


def command_key_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / KEY_FILE


def load_or_create(state_dir: str | Path) -> OKPKey:
    """The command key under ``state_dir``, created first if missing. Raises CommandKeyError."""
    path = command_key_path(state_dir)
    if not path.exists():
        key = generate_private_key()
        try:
            write_private(path, private_pem(key))
        except FileExistsError:
            pass  # another collector process created it meanwhile: use theirs
        except OSError as exc:
            raise CommandKeyError(f"cannot create the command key {path}: {exc.strerror}") from exc
        else:
            log.info("created the collector's command key %s (kid %s)", path, key.thumbprint())
            return key
    try:
        return import_private_pem(path.read_bytes())
    except OSError as exc:
        raise CommandKeyError(f"cannot read the command key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CommandKeyError(f"{path} is not an Ed25519 private key") from exc
