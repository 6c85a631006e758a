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
    """A model server started with `flags`; returns once its REST API answers."""

    def __init__(self, *flags, timeout=180, command=(sys.executable, "-m", "tfllm.serve")):
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log = tempfile.NamedTemporaryFile("w+", prefix="tfllm-serve-", suffix=".log")
        self.process = subprocess.Popen(
            [*command, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *flags],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TfllmError(f"The model server exited: {self.output()[-3000:]}")
            try:
                requests.get(f"{self.rest}/v1/models/none", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.3)
        self.stop()
        raise TfllmError(f"The model server did not start in {timeout}s: "
                         f"{self.output()[-3000:]}")

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
