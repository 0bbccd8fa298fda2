"""How the bench and the peer tests start each peer: one process, one instance, on a port.

`command(name, port, database_url, redis_url)` gives (argv, env) for:
- "express": `node bench/peers/express/app.js` (needs `npm ci` in bench/peers/express);
- "fastapi": `python -m uvicorn bench.peers.fastapi.app:app --workers 1` (uvloop and
  httptools, as `uvicorn[standard]` installs them; no access log);
- "baseline": `python -m bench.baseline` (granian), which also needs BASELINE_CACHE_KEY
  and BASELINE_SESSION_PREFIX in `extra`.
`database_url` is SQLAlchemy's form (postgresql+asyncpg://...); each peer gets its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from bench.peers.sessions import EXPRESS_SECRET

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS = ("express", "fastapi")


def missing(name: str) -> str | None:
    """Why a peer cannot start here (a message naming the package), or None."""
    if name == "express":
        if shutil.which("node") is None:
            return "the Express peer needs node (apt-get install nodejs npm)"
        if not (HERE / "express" / "node_modules" / "express").is_dir():
            return "the Express peer needs its packages: cd bench/peers/express && npm ci"
    if name == "fastapi":
        try:
            import fastapi  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            return "the FastAPI peer needs fastapi and uvicorn: pip install -e '.[bench]'"
    return None


def command(
    name: str, port: int, database_url: str, redis_url: str, extra: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    plain = database_url.replace("postgresql+asyncpg://", "postgresql://")
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(extra or {})}
    if name == "express":
        node = shutil.which("node") or "node"
        env |= {
            "PORT": str(port),
            "DATABASE_URL": plain,
            "REDIS_URL": redis_url,
            "SESSION_SECRET": EXPRESS_SECRET,
            "NODE_ENV": "production",
        }
        return [node, str(HERE / "express" / "app.js")], env
    if name == "fastapi":
        env |= {"PEER_DATABASE_URL": database_url, "PEER_REDIS_URL": redis_url}
        argv = [sys.executable, "-m", "uvicorn", "bench.peers.fastapi.app:app"]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        argv += ["--no-access-log", "--log-level", "warning"]
        return argv, env
    if name == "baseline":
        env |= {"BASELINE_REDIS_URL": redis_url, "BASELINE_DATABASE_URL": plain}
        return [sys.executable, "-m", "bench.baseline", str(port)], env
    raise ValueError(name)
