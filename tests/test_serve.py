"""`ecoledger api-key ...` and `ecoledger serve`: keys made on the command line work against
the real server (gunicorn in its own process), and a job started through the API is done by
the embedded job worker that `serve` starts when no broker is configured."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

EXECUTABLE = os.path.join(os.path.dirname(sys.executable), "ecoledger")


def test_api_key_lifecycle(ready):
    code, token, err = ready("api-key", "create", "--name", "ops", "--role", "operator_admin")
    assert code == 0 and token.startswith("eco_") and "shown only now" in err
    key_id = token.split("_")[1]
    code, out, _ = ready("api-key", "create", "--name", "vendor portal", "--role", "partner", "--company", "VEND",
                         "--expires-in-days", "30", "--format", "json")
    issued = json.loads(out)
    assert code == 0 and issued["key"]["company"] == "VEND" and issued["key"]["expires_at"]

    code, out, _ = ready("api-key", "list", "--format", "json")
    listed = json.loads(out)
    assert {k["name"] for k in listed} == {"ops", "vendor portal"}
    assert all("token" not in k and "secret_hash" not in k for k in listed)

    code, out, _ = ready("api-key", "rotate", key_id, "--grace-hours", "0", "--format", "json")
    rotated = json.loads(out)
    assert code == 0 and rotated["key"]["rotated_from"] == key_id and rotated["token"] != token

    code, out, _ = ready("api-key", "revoke", rotated["key"]["id"])
    assert code == 0 and "revoked" in out
    code, out, _ = ready("api-key", "list", "--format", "csv")
    assert rotated["key"]["id"] not in out  # revoked keys only with --all
    code, out, _ = ready("api-key", "list", "--all", "--format", "csv")
    assert f"{rotated['key']['id']}," in out and ",revoked" in out

    code, out, _ = ready("api-key", "show", key_id, "--format", "json")
    assert json.loads(out)["id"] == key_id


@pytest.mark.parametrize(
    "args, message",
    [
        (["--role", "partner"], "a partner key names its company"),
        (["--role", "auditor", "--company", "VEND"], "a partner key names its company"),
        (["--role", "partner", "--company", "NOPE"], "NOPE"),
        (["--role", "superuser"], "Invalid value for '--role'"),
        (["--role", "auditor", "--expires-in-days", "0"], "--expires-in-days"),
    ],
)
def test_api_key_refusals_write_nothing(ready, args, message):
    code, out, err = ready("api-key", "create", "--name", "x", *args)
    assert code in (1, 2) and message in err and not out
    assert json.loads(ready("api-key", "list", "--all", "--format", "json")[1]) == []


def test_unknown_key(ready):
    code, _, err = ready("api-key", "revoke", "nosuchkey000")
    assert code == 1 and "no API key 'nosuchkey000'" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_serve_answers_and_runs_jobs_with_the_embedded_worker(ready, db_url, tmp_path):
    token = ready("api-key", "create", "--name", "ops", "--role", "operator_admin")[1].strip()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOLEDGER_")}
    env["ECOLEDGER_DATA_DIR"] = str(tmp_path / "data")
    server = subprocess.Popen(
        [EXECUTABLE, "--database", db_url, "serve", "--port", str(port), "--workers", "1", "--no-access-log"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = _call(f"{base}/ready")
                break
            except OSError:
                assert server.poll() is None, server.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert status == 200 and body["status"] == "ready"
        assert _call(f"{base}/companies")[0] == 401
        status, companies = _call(f"{base}/companies", token)
        assert status == 200 and {c["code"] for c in companies} == {"OPFI", "VEND"}

        status, job = _call(f"{base}/jobs", token, {"kind": "verify", "params": {}})
        assert status == 202, job
        deadline = time.monotonic() + 90
        while job["status"] not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"the embedded worker did not run the job: {job}"
            time.sleep(0.5)
            job = _call(f"{base}/jobs/{job['id']}", token)[1]
        assert job["status"] == "succeeded" and job["result"]["ok"] is True
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output = server.communicate(timeout=60)[0].decode()
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    assert server.returncode == 0, output
    assert "starting the embedded job worker" in output
    # The embedded worker went down with the server: nothing is left in its session.
    time.sleep(1)
    leftover = subprocess.run(["pgrep", "-s", str(server.pid)], capture_output=True, text=True).stdout.split()
    assert leftover == [], output
