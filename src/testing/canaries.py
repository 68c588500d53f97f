"""Canary secrets: unique fake secrets planted in every shape a real one takes, and found again.

Each canary is a random-looking token (``sk-...``, ``hf_...``, ``nvapi-...``, a password, a
private-key line) with a fixed marker in its middle. Finding where canaries went is one
``bytes.find`` of the marker per file, whatever the number of canaries; a hit whose canary is not
whole still counts: part of a secret left the machine.

Used by the contract suites (``SinkContract``) and by the hostile corpus under ``tests/hostile``.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalport.testing.factory import LauncherHome, append_records

MARKER = "Kq7Zv3"
_TAIL = 8
_ALNUM = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Canary:
    value: str
    where: str


class Canaries:
    """A registry of canaries; :meth:`leaks_in` names every one found in some bytes."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self.all: list[Canary] = []
        self._by_tail: dict[str, Canary] = {}

    def make(self, prefix: str, where: str, length: int = 40) -> str:
        """A new canary ``<prefix><random><MARKER><random>`` registered under ``where``."""
        while True:
            head = "".join(self._rng.choice(_ALNUM) for _ in range(8))
            tail = "".join(self._rng.choice(_ALNUM) for _ in range(max(length - 8 - len(MARKER), _TAIL)))
            if tail[:_TAIL] not in self._by_tail:
                break
        canary = Canary(f"{prefix}{head}{MARKER}{tail}", where)
        self.all.append(canary)
        self._by_tail[tail[:_TAIL]] = canary
        return canary.value

    @property
    def values(self) -> list[str]:
        return [c.value for c in self.all]

    def leaks_in(self, data: bytes | str, source: str = "") -> list[str]:
        """One line per canary (whole or in part) found in ``data``: where it was planted, and ``source``."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        marker = MARKER.encode()
        found: dict[str, str] = {}
        at = data.find(marker)
        while at != -1:
            tail = data[at + len(marker) : at + len(marker) + _TAIL].decode("ascii", "replace")
            canary = self._by_tail.get(tail)
            if canary is not None and canary.value.encode() in data[max(0, at - 80) : at + 80]:
                found.setdefault(canary.value, f"{canary.where} ({canary.value}) found in {source}")
            else:
                snippet = data[max(0, at - 24) : at + 24]
                found[f"partial@{at}"] = f"part of a canary ({snippet!r}) found in {source} at byte {at}"
            at = data.find(marker, at + 1)
        return list(found.values())


# ---- shapes ------------------------------------------------------------------------------------
def pem_block(line: str, kind: str = "PRIVATE KEY") -> str:
    """A private-key block whose body holds ``line`` (64 base64-looking characters)."""
    return f"-----BEGIN {kind}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n{line}\n-----END {kind}-----\n"


def secret_config(canaries: Canaries, tag: str) -> dict[str, Any]:
    """Launcher-config additions holding secrets in every shape (merge with :func:`deep_merge`).

    Lists and mappings under secret keys, URL credentials, a multi-line private key (a YAML block
    scalar once written with :func:`block_yaml`), one-line JSON with ``private_key`` and
    ``credentials`` under innocent keys, a bearer header and a bare token in free text.
    """
    c = canaries.make
    return {
        "target": {
            "api_endpoint": {
                "url": f"https://alice:{c('pw', f'{tag}: URL password in target.api_endpoint.url')}"
                "@example.invalid/v1/chat/completions",
                "api_key": [
                    c("nvapi-", f"{tag}: api_key list item 1"),
                    c("nvapi-", f"{tag}: api_key list item 2"),
                ],
            }
        },
        "env_vars": {
            "hf_token": {"value": c("hf_", f"{tag}: hf_token mapping value")},
            "SERVICE_ACCOUNT_INFO": json.dumps(
                {
                    "type": "service_account",
                    "client_email": "bot@example.invalid",
                    "private_key": pem_block(c("MIIB", f"{tag}: private_key in one-line JSON", 64)),
                }
            ),
            "CLIENT_OPTIONS": json.dumps(
                {"credentials": c("", f"{tag}: credentials in one-line JSON"), "region": "us"}
            ),
        },
        "deployment": {
            "ssh_private_key": pem_block(
                c("b3Bl", f"{tag}: ssh_private_key block scalar", 64), "OPENSSH PRIVATE KEY"
            ),
            "notes": "deploy key:\n" + pem_block(c("MIIC", f"{tag}: private-key block under 'notes'", 64)),
        },
        "evaluation": {
            "nemo_evaluator_config": {
                "config": {
                    "params": {
                        "extra": {
                            "headers": f"Authorization: Bearer {c('eyJ', f'{tag}: Bearer header in params')}",
                            "comment": f"OpenAI key: {c('sk-proj-', f'{tag}: bare sk-proj token in params')}",
                        }
                    }
                }
            }
        },
    }


def secret_command(canaries: Canaries, tag: str, model_id: str, task: str) -> str:
    """The evaluation's recorded command line with ``--api_key`` and ``--hf-token`` values."""
    key = canaries.make("sk-", f"{tag}: --api_key on run_config.yml command")
    hf = canaries.make("hf_", f"{tag}: --hf-token on run_config.yml command")
    return (
        f"simple_evals --model {model_id} --eval_name {task} "
        "--url https://example.invalid/v1/chat/completions "
        f"--api_key {key} --out_dir /results --num_threads 8 --hf-token {hf} --max_retries 5 --timeout 3600"
    )


def visible_line(relpath: str) -> str:
    """A harmless line planted in each file, so a test can tell that a read-back saw the file's text."""
    return f"planted-file {relpath}"


def plant_secret_files(job_dir: Path, canaries: Canaries, tag: str, *, big_log_bytes: int = 0) -> list[str]:
    """Writes text files holding secrets by content; returns the relative paths written (to be sent).

    ``artifacts/report.html`` (sent by default), ``logs/*.out``, ``logs/*.jsonl``, a log with one
    non-UTF-8 byte, bare tokens appended to the client log, a never-sent ``logs/.secrets.env``, and
    with ``big_log_bytes`` a log of that size with a token at its end.
    """
    c = canaries.make
    art, logs = job_dir / "artifacts", job_dir / "logs"
    art.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    files = _secret_files(c, tag)
    for rel, data in files.items():
        (job_dir / rel).write_bytes(data)
    _append_client_log(logs, c, tag)
    written = [rel for rel in files if not rel.endswith(".secrets.env")] + ["logs/client_stdout.log"]
    if big_log_bytes:
        _write_big_log(logs, c, tag, big_log_bytes)
        written.append("logs/big.log")
    return written


def _secret_files(c: Callable[..., str], tag: str) -> dict[str, bytes]:
    """The planted files by relative path (a report, .out, .jsonl, a non-UTF-8 log, .secrets.env)."""
    return {
        "artifacts/report.html": (
            "<html><body><h1>report</h1>\n"
            f"<p>{visible_line('artifacts/report.html')}</p>\n"
            f'<pre>curl -H "Authorization: Bearer {c("eyJ", f"{tag}: Bearer in report.html")}" '
            "https://example.invalid/v1</pre>\n"
            f"<table><tr><td>key</td><td>{c('nvapi-', f'{tag}: bare nvapi token in report.html')}</td>"
            "</tr></table>\n"
            "</body></html>\n"
        ).encode(),
        "logs/slurm-4242.out": (
            f"{visible_line('logs/slurm-4242.out')}\n"
            f"export HF_TOKEN={c('hf_', f'{tag}: HF_TOKEN= in a .out file')}\n"
            f"using {c('sk-', f'{tag}: bare sk- token in a .out file')} for the judge\n"
        ).encode(),
        "logs/requests.jsonl": (
            json.dumps({"note": visible_line("logs/requests.jsonl")})
            + "\n"
            + json.dumps(
                {"headers": {"Authorization": f"Bearer {c('eyJ', f'{tag}: Bearer in a .jsonl file')}"}}
            )
            + "\n"
            + json.dumps(
                {
                    "credentials": {
                        "refresh_token": c("", f"{tag}: credentials.refresh_token in a .jsonl file")
                    },
                    "private_key": pem_block(c("MIID", f"{tag}: private_key in a .jsonl file", 64)),
                }
            )
            + "\n"
        ).encode(),
        "logs/server.log": (
            f"{visible_line('logs/server.log')}\n".encode()
            + b"started \xff\xfe (one byte that is not UTF-8)\n"
            + f"api_key={c('nvapi-', f'{tag}: api_key= in a non-UTF-8 log')}\n".encode()
            + f"OpenAI key: {c('sk-proj-', f'{tag}: sk-proj token in a non-UTF-8 log')}\n".encode()
        ),
        "logs/.secrets.env": f"NGC_API_KEY={c('nvapi-', f'{tag}: logs/.secrets.env, never sent')}\n".encode(),
    }


def _append_client_log(logs: Path, c: Callable[..., str], tag: str) -> None:
    """Bare tokens, a URL password, a Bearer header and a key block, appended to the client log."""
    with open(logs / "client_stdout.log", "a", encoding="utf-8") as fh:
        fh.write(
            f"{visible_line('logs/client_stdout.log')}\n"
            f"[I] token {c('nvapi-', f'{tag}: bare nvapi token in client_stdout.log')}\n"
            f"[I] OpenAI key: {c('sk-proj-', f'{tag}: OpenAI key in client_stdout.log')}\n"
            f"[D] GET https://bob:{c('pw', f'{tag}: URL password in client_stdout.log')}@example.invalid/v1\n"
            f"[D] Authorization: Bearer {c('eyJ', f'{tag}: Bearer in client_stdout.log')}\n"
            + pem_block(c("MIIE", f"{tag}: private-key block in client_stdout.log", 64))
        )


def _write_big_log(logs: Path, c: Callable[..., str], tag: str, size: int) -> None:
    """``logs/big.log`` of about ``size`` bytes with a token at its very end."""
    line = "2026-01-01T00:00:00Z [I] request 1 status=200 latency=0.25s tokens=812\n"
    with open(logs / "big.log", "w", encoding="utf-8") as fh:
        fh.write(f"{visible_line('logs/big.log')}\n")
        chunk = line * 16384
        for _ in range(size // len(chunk) + 1):
            fh.write(chunk)
        fh.write(f"[I] OpenAI key: {c('sk-proj-', f'{tag}: token at the end of a log over 64 MiB')}\n")


# ---- writing -----------------------------------------------------------------------------------
class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as ``|`` block scalars, the way people write private keys in YAML."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)


def block_yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False)


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = (
            deep_merge(old, value) if isinstance(old, Mapping) and isinstance(value, Mapping) else value
        )
    return out


def plant_in_job(
    job_dir: Path,
    config: Mapping[str, Any],
    canaries: Canaries,
    tag: str,
    *,
    model_id: str,
    task: str,
    big_log_bytes: int = 0,
) -> list[str]:
    """Plants secrets in a job written by :func:`evalport.testing.factory.write_job`.

    ``config`` (already holding :func:`secret_config`) becomes ``metadata.yaml``'s resolved config,
    with block scalars; ``run_config.yml`` gets a ``command`` with key flags; text files are added.
    """
    art = job_dir / "artifacts"
    run_config = yaml.safe_load((art / "run_config.yml").read_text())
    run_config["command"] = secret_command(canaries, tag, model_id, task)
    (art / "run_config.yml").write_text(yaml.safe_dump(run_config, sort_keys=True))
    meta = {"launcher_resolved_config": dict(config), "versioning": {"nemo_evaluator_launcher": "0.2.6"}}
    (art / "metadata.yaml").write_text(block_yaml(meta))
    return plant_secret_files(job_dir, canaries, tag, big_log_bytes=big_log_bytes)


def plant_in_home(home: LauncherHome, canaries: Canaries) -> list[str]:
    """Plants secrets of every shape in each job of ``home`` (configs, exec DB, files); returns the
    relative paths of the planted files that a sink sending artifacts and logs would send."""
    planted: list[str] = []
    for job in home.jobs:
        tag = job.job_id
        job.record["config"] = deep_merge(job.record["config"], secret_config(canaries, tag))
        planted = plant_in_job(
            job.directory, job.record["config"], canaries, tag, model_id=job.model_id, task=job.task
        )
    home.exec_db.unlink()
    append_records(home.exec_db, [j.record for j in home.jobs])
    return planted
