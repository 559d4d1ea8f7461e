"""Configuration (issue 14, point 5): `serve --config FILE` (YAML or JSON, keyed like the
variables) through swift-configuration, with one precedence (flag > variable > file > default),
and `assistants-server config` printing the effective settings with secrets masked."""

from __future__ import annotations

import json
import os
import subprocess

import httpx

from conftest import SERVER_BIN


def run_config(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANTS_", "OTEL_"))}
    environment.update(env or {})
    return subprocess.run([str(SERVER_BIN), "config", *args], env=environment, cwd=cwd,
                          capture_output=True, text=True, timeout=30)


def settings(output: str) -> dict:
    out = {}
    for line in output.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        name, _, rest = line.partition("=")
        value, _, source = rest.partition("  # ")
        out[name] = (value, source)
    return out


def test_precedence_flag_variable_file_default(tmp_path):
    path = tmp_path / "server.yaml"
    path.write_text("ASSISTANTS_PORT: 9090\nASSISTANTS_HOST: 127.0.0.2\nASSISTANTS_RUN_EXPIRY_SECONDS: 300\n"
                    "ASSISTANTS_METRICS: false\n")
    r = run_config("--config", str(path), "--port", "8181", env={"ASSISTANTS_HOST": "127.0.0.3"})
    assert r.returncode == 0, r.stderr
    s = settings(r.stdout)
    assert s["ASSISTANTS_PORT"] == ("8181", "flag")
    assert s["ASSISTANTS_HOST"] == ("127.0.0.3", "environment")
    assert s["ASSISTANTS_RUN_EXPIRY_SECONDS"] == ("300", f"file {path}")
    assert s["ASSISTANTS_METRICS"][1] == f"file {path}"
    assert s["ASSISTANTS_NODE_TIMEOUT"] == ("", "default")
    assert "listen 127.0.0.3:8181" in r.stdout and "metrics off" in r.stdout


def test_secrets_are_masked(tmp_path):
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"ASSISTANTS_API_KEYS": "sk-proj-abcdefgh:team,sk-other-12345678:ops",
                                "ASSISTANTS_DATABASE_URL": "postgres://user:hunter2@db:5432/assistants",
                                "ASSISTANTS_PORT": 7070}))
    r = run_config("--config", str(path), env={"ASSISTANTS_UPSTREAM_API_KEY": "sk-upstream-secret-value"})
    assert r.returncode == 0, r.stderr
    for secret in ("abcdefgh", "12345678", "hunter2", "upstream-secret-value"):
        assert secret not in r.stdout, r.stdout
    s = settings(r.stdout)
    assert s["ASSISTANTS_API_KEYS"][0] == "sk-***:team,sk-***:ops"
    assert s["ASSISTANTS_DATABASE_URL"][0] == "postgres://user:***@db:5432/assistants"
    assert s["ASSISTANTS_UPSTREAM_API_KEY"][0] == "sk-***"
    assert s["ASSISTANTS_PORT"][0] == "7070"


def test_bad_config_files_are_refused(tmp_path):
    r = run_config("--config", str(tmp_path / "missing.yaml"))
    assert r.returncode != 0 and "cannot read" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("ASSISTANTS_PORT: [1\n")
    r = run_config("--config", str(bad))
    assert r.returncode != 0 and "bad.yaml" in r.stderr
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("ASSISTANTS_RUN_EXPIRY_SECONDS: soon\n")
    r = run_config("--config", str(wrong))
    assert r.returncode != 0 and "ASSISTANTS_RUN_EXPIRY_SECONDS" in r.stderr


def test_serve_reads_the_config_file(server_factory, tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("ASSISTANTS_API_KEYS: sk-from-file-0123456789:filed\n")
    s = server_factory(name="configured", extra_args=["--config", str(path)])
    assert httpx.get(s.base_url + "/v1/assistants").status_code == 401
    r = httpx.get(s.base_url + "/v1/assistants", headers={"Authorization": "Bearer sk-from-file-0123456789"})
    assert r.status_code == 200, r.text


def test_names_no_setting_reads_are_reported_and_the_server_still_starts(server_factory, tmp_path):
    """A mistyped variable or file key is ignored, never refused (a start must not fail on a name
    of another version), but start-up says so, with the setting it was probably meant to be."""
    path = tmp_path / "server.yaml"
    path.write_text("ASSISTANTS_RUN_EXPIRY_SECOND: 300\nASSISTANTS_LOG_FORMAT: json\n")
    typo = {"ASSISTANTS_UPSTREAM_UR": "http://127.0.0.1:9/v1", "ASSISTANTS_LOG_FORMAT": "text"}
    r = run_config("--config", str(path), env=typo)
    assert r.returncode == 0, r.stderr
    ignored = [line for line in r.stdout.splitlines() if line.startswith("# ignored: ")]
    assert ignored == [
        "# ignored: ASSISTANTS_UPSTREAM_UR in the environment is not a setting of this server and is ignored;"
        " did you mean ASSISTANTS_UPSTREAM_URL?",
        "# ignored: ASSISTANTS_RUN_EXPIRY_SECOND in the --config file is not a setting of this server and is ignored;"
        " did you mean ASSISTANTS_RUN_EXPIRY_SECONDS?",
        "# ignored: ASSISTANTS_LOG_FORMAT in the --config file is ignored: it is read from the environment only",
    ], r.stdout
    assert settings(r.stdout)["ASSISTANTS_RUN_EXPIRY_SECONDS"] == ("", "default")
    s = server_factory(name="typos", extra_env={"ASSISTANTS_UPSTREAM_UR": "http://127.0.0.1:9/v1"},
                       extra_args=["--config", str(path)])
    assert httpx.get(s.base_url + "/health").status_code == 200
    log = s.log_path.read_text()
    assert "ASSISTANTS_UPSTREAM_UR in the environment is not a setting of this server" in log, log[-2000:]
    assert "did you mean ASSISTANTS_RUN_EXPIRY_SECONDS?" in log, log[-2000:]


def test_run_admission_lag_is_a_setting(tmp_path):
    """ASSISTANTS_RUN_ADMISSION_LAG_MS (RunAdmission): 2 ms by default, 0 turns it off, anything
    else than whole milliseconds up to 10,000 is refused at start, naming the variable."""
    s = settings(run_config().stdout)
    assert s["ASSISTANTS_RUN_ADMISSION_LAG_MS"] == ("", "default")
    r = run_config(env={"ASSISTANTS_RUN_ADMISSION_LAG_MS": "0"})
    assert r.returncode == 0 and settings(r.stdout)["ASSISTANTS_RUN_ADMISSION_LAG_MS"] == ("0", "environment"), r.stderr
    for bad in ("-1", "fast", "10001", "2.5"):
        r = run_config(env={"ASSISTANTS_RUN_ADMISSION_LAG_MS": bad})
        assert r.returncode != 0 and f"invalid ASSISTANTS_RUN_ADMISSION_LAG_MS '{bad}'" in r.stderr, (bad, r.stderr)
