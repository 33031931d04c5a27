"""Run the app under uvicorn and print the address it really listens on (``--port 0`` included).

Graceful shutdown is uvicorn's: on SIGTERM or SIGINT it stops accepting connections, lets the
open requests finish (up to ``graceful_timeout`` seconds), then runs the app's shutdown, which
answers every request still queued before the worker stops; the process then ends by the
signal it got, as uvicorn re-raises it for supervisors.
"""

from __future__ import annotations

from .app import ServeConfig, create_app


def serve(config: ServeConfig, host: str = "127.0.0.1", port: int = 8000, graceful_timeout: float = 30.0,
          log_level: str = "warning") -> int:
    """Serve until stopped; prints ``serving MODEL at http://HOST:PORT/`` once the model is ready."""
    import uvicorn

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)
            if not self.should_exit and self.servers:  # the line tests and scripts wait for
                bound = self.servers[0].sockets[0].getsockname()[1]
                print(f"serving {config.model_path} at http://{host}:{bound}/", flush=True)

    server = _Server(uvicorn.Config(create_app(config), host=host, port=port, log_level=log_level,
                                    timeout_graceful_shutdown=graceful_timeout, access_log=False))
    server.run()
    return 0 if server.started else 1
