"""Starts `python -m tfllm.serve` (or the real `tensorflow_model_server`) as a process
on free ports."""

import os
import socket
import subprocess
import sys
import time

import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, *flags, timeout=180, command=(sys.executable, "-m", "tfllm.serve")):
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log_path = os.path.join("/tmp", f"tfllm-serve-{self.rest_port}.log")
        self.log = open(self.log_path, "w+")
        self.process = subprocess.Popen(
            [*command, f"--port={self.grpc_port}",
             f"--rest_api_port={self.rest_port}", *flags],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tfllm.serve exited: {self.output()[-3000:]}")
            try:
                requests.get(f"{self.rest}/v1/models/none", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"tfllm.serve did not start: {self.output()[-3000:]}")

    @property
    def rest(self):
        return f"http://127.0.0.1:{self.rest_port}"

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
