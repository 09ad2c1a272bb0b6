"""A real S3-API server for the tests: moto's server mode (HTTP on a free local port), reached through s3fs.

`s3_root` starts one server per test process (pytest-xdist workers each get their own), creates a bucket, an IAM
user whose key is the only one accepted (so wrong credentials really fail), and points the standard AWS
environment variables at it, which subprocesses (the real `crl-*` entry points) inherit. No network, no account.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "crl-test"


@dataclass
class S3Server:
    """The running server: endpoint URL, the accepted key pair, and the test bucket."""

    endpoint: str
    key: str
    secret: str
    bucket: str = BUCKET
    server: Any = None

    def stop(self) -> None:
        """Stop serving (a server that went away); the stored objects stay in this process's moto backend."""
        self.server.stop()

    def restart(self) -> None:
        """Serve again on the same port, with the same objects."""
        from moto.server import ThreadedMotoServer

        host, port = self.endpoint.rsplit(":", 1)
        self.server = ThreadedMotoServer(ip_address=host.split("//")[1], port=int(port), verbose=False)
        self.server.start()

    def stop_during(self, proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120.0
                    ) -> tuple[str, str]:
        """Stop serving in the middle of `proc` (a running command) once `ready()` holds, let the command end, and
        serve again whatever happens; returns its (stdout, stderr). Fails if the command ends before the fault."""
        deadline, stopped = time.monotonic() + timeout, False
        try:
            while not ready():
                assert proc.poll() is None and time.monotonic() < deadline, "the command ended before the fault"
                time.sleep(0.05)
            self.stop()
            stopped = True
            return proc.communicate(timeout=120)
        finally:
            proc.kill()
            if stopped:
                self.restart()

    def env(self) -> dict[str, str]:
        """The environment a client needs (what a user sets for a private S3-compatible server)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.key,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # noqa: ANN201 - a boto3 S3 client, for tests that damage objects behind the store's back
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name="us-east-1")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """Start moto's ThreadedMotoServer on a free port with IAM authentication on; stop it at the end."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boot = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "boot",
            "aws_secret_access_key": "boot"}
    iam = boto3.client("iam", **boot)
    iam.create_user(UserName="crl")
    iam.put_user_policy(UserName="crl", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="crl")["AccessKey"]
    boto3.client("s3", **boot).create_bucket(Bucket=BUCKET)
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=10)  # from now on every request is signed
    info = S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], server=server)
    saved = {k: os.environ.get(k) for k in info.env()}
    os.environ.update(info.env())
    try:
        yield info
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        info.server.stop()


@pytest.fixture
def s3_root(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh dataset root in the bucket for one test (`s3://crl-test/<uuid>`), exported as CRL_DATA_DIR."""
    root = f"s3://{s3_server.bucket}/{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CRL_DATA_DIR", root)
    return root
