"""A real SSH server on the loopback address for tests (asyncssh): a throwaway host key and client key, a random
port, commands run by the local shell, SFTP on the local file system. ``with ssh_server(tmp) as server:`` gives
its ``url``, ``key`` (the client key file) and ``known_hosts`` file."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import threading
from dataclasses import dataclass
from pathlib import Path

asyncssh = __import__("pytest").importorskip("asyncssh")


@dataclass
class Server:
    url: str
    key: str
    known_hosts: str
    commands: list


async def _shell(process, commands: list, folder: Path) -> None:
    commands.append(process.command)
    # the "device's" temporary files in the test's folder: a client killed before it cleans up leaves nothing in /tmp
    local = await asyncio.create_subprocess_shell(process.command or "true", stdin=asyncio.subprocess.DEVNULL,
                                                  stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                  env={**os.environ, "TMPDIR": str(folder)})
    out, err = await local.communicate()  # whole, then sent: the exit status never overtakes the output
    process.stdout.write(out.decode(errors="replace"))
    process.stderr.write(err.decode(errors="replace"))
    process.exit(local.returncode)
    await process.wait_closed()


@contextlib.contextmanager
def ssh_server(folder: Path):
    host_key, client_key = asyncssh.generate_private_key("ssh-ed25519"), asyncssh.generate_private_key("ssh-ed25519")
    key_file = folder / "id_ed25519"
    client_key.write_private_key(str(key_file))
    commands: list = []
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start():
        return await asyncssh.listen("127.0.0.1", 0, server_host_keys=[host_key], sftp_factory=True,
                                     authorized_client_keys=asyncssh.import_authorized_keys(
                                         client_key.export_public_key().decode()),
                                     process_factory=lambda p: _shell(p, commands, folder))

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    port = server.sockets[0].getsockname()[1]
    known = folder / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    try:
        yield Server(f"ssh://{getpass.getuser()}@127.0.0.1:{port}", str(key_file), str(known), commands)
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
