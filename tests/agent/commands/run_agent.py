"""The agent's command executor in its own process, for the kill -9 tests:
``python -m tests.agent.commands.run_agent CONFIG.json KEY VAULT.json [COMMAND.jws]``.
Resumes what the journal holds, then carries out the command if one is given."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import msgspec

from agent.commands.executor import Executor
from agent.config import AgentConfig
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from agent.trust.identity import collector_key, load_key
from tests.support.credentials import FileCredentials


async def main(argv: list[str], command: bytes | None) -> int:
    config = msgspec.json.decode(Path(argv[0]).read_bytes(), type=AgentConfig)  # noqa: ASYNC240
    key = load_key(Path(argv[1]))
    pinned = collector_key(config.state_path)
    assert pinned is not None
    outbox = Outbox(config.state_path / "outbox", 64 * 1024 * 1024, 20_000)
    issuer = Issuer(config.agent_id, config.site, key, StateStore(config.state_path), outbox)
    executor = Executor(config, issuer, pinned, FileCredentials(Path(argv[2])))
    for command_id, status in await executor.resume():
        print(f"resumed {command_id}: {status}", flush=True)
    if command is not None:
        print(await executor.submit(command), flush=True)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    args = sys.argv[1:]
    token = Path(args[3]).read_bytes() if len(args) > 3 else None
    sys.exit(asyncio.run(main(args, token)))
