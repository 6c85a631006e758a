"""Runs `python -m tfllm.serve` (or the real `tensorflow_model_server`) as a child
process on free loopback ports: for tests, benchmarks and infra validation."""

import os
import socket
import subprocess
import sys
import tempfile
import time

import requests

from tfllm.errors import TfllmError


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A model server started with `flags`; returns once its REST API answers.

    The ports are free when chosen but another process (a parallel test, a second
    server) may take one before the child binds it; the child then exits, and it is
    started again on new ports. The REST API is probed only after the child announced
    it (as tensorflow_model_server does), so the answer comes from this child.
    """

    _READY = "Exporting HTTP/REST API at:"

    def __init__(self, *flags, timeout=180, attempts=3,
                 command=(sys.executable, "-m", "tfllm.serve")):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="tfllm-serve-", suffix=".log")
        deadline = time.monotonic() + timeout
        for attempt in range(attempts):
            self.grpc_port, self.rest_port = free_port(), free_port()
            self.log.seek(0)
            self.log.truncate()
            self.process = subprocess.Popen(
                [*command, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}",
                 *flags], stdout=self.log, stderr=subprocess.STDOUT,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
            if self._wait_until_ready(deadline):
                return
            if self.process.returncode is None:  # still starting at the deadline
                break
            if attempt == attempts - 1 or "in use" not in self.output():
                raise TfllmError(f"The model server exited: {self.output()[-3000:]}")
        self.stop()
        raise TfllmError(f"The model server did not start in {timeout}s: "
                         f"{self.output()[-3000:]}")

    def _wait_until_ready(self, deadline):
        """True once the REST API answers; False when the child exited or time ran out."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            if self._READY in self.output():
                try:
                    requests.get(f"{self.rest}/v1/models/none", timeout=1)
                    return True
                except requests.ConnectionError:
                    pass
            time.sleep(0.3)
        return False

    @property
    def rest(self):
        return f"http://127.0.0.1:{self.rest_port}"

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
