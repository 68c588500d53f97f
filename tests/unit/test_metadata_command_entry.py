"""The launcher command is read from metadata.yaml's own lines when the job has its config from the
DB: the same value the whole-document parse gives, and the whole parse whenever the YAML is unusual."""

from __future__ import annotations

import pytest
import yaml

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.adapters.formats.yaml_entry import UNUSUAL, top_level_entry
from evalport.domain.model import Job, LocalLocation
from evalport.testing.factory import write_launcher_home

CONFIG = {"deployment": {"type": "none"}, "evaluation": {"tasks": [{"name": "gsm8k"}]}, "note": "a: b"}
LONG = "nemo-evaluator-launcher run --config configs/x.yaml " + " ".join(
    f"-o key{i}=value{i}" for i in range(30)
)

COMMANDS = [
    LONG,
    "run -o 'quoted: with colon' -o \"double\" -o x=#notacomment",
    "run --flag: value-with-colon-space",
    "line one\nline two\n  indented",
    "",
    "trailing spaces   ",
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("style", [None, "'", '"', "|", ">"])
def test_the_entry_has_the_value_the_whole_parse_gives(command, style):
    doc = {"launcher_resolved_config": CONFIG, "versioning": {"v": "1"}, "launcher_command": command}
    data = yaml.dump(doc, default_style=style, sort_keys=False).encode()
    got = top_level_entry(data, "launcher_command")
    assert got is UNUSUAL or got == yaml.safe_load(data)["launcher_command"]
    if style is None:
        assert got == command  # the plain block style the launcher writes is never the slow path


def test_a_command_folded_over_several_lines_is_read_whole():
    data = yaml.dump({"a": CONFIG, "launcher_command": LONG}, width=80).encode()
    assert data.count(b"\n") > 4
    assert top_level_entry(data, "launcher_command") == LONG


def test_the_command_before_other_keys_stops_at_the_next_key():
    data = yaml.dump({"launcher_command": LONG, "z": CONFIG}, sort_keys=False).encode()
    assert top_level_entry(data, "launcher_command") == LONG


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nlauncher_command: *x\n",
        "{launcher_command: run, a: 1}\n",
        "---\nlauncher_command: run\n",
        "launcher_command: run\n---\nlauncher_command: other\n",
        "launcher_command: run\nlauncher_command: again\n",
        '"launcher_command": run\n',
        "launcher_command: !!str run\n",
        "a:\n\t- 1\nlauncher_command: run\n",
    ],
    ids=["alias", "flow", "marker", "two-documents", "duplicate", "quoted-key", "tag", "tab"],
)
def test_anything_unusual_is_left_to_the_whole_parse(text):
    assert top_level_entry(text.encode(), "launcher_command") is UNUSUAL


def test_a_document_without_the_key_has_no_command():
    assert top_level_entry(b"a: 1\nb:\n  c: 2\n", "launcher_command") is None


def _job_with_config(written) -> Job:
    return Job(
        written.job_id,
        written.invocation_id,
        written.task,
        "local",
        LocalLocation(str(written.directory)),
        config={"from": "db"},
    )


def test_a_secret_on_a_folded_command_line_is_masked(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    meta_path = written.directory / "artifacts" / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["launcher_command"] = LONG + " --api-key sk-live-abcdef0123456789abcdef -o x=1"
    meta_path.write_text(yaml.safe_dump(meta))
    result = read_task_result(_job_with_config(written), written.directory)
    assert result.launcher_command is not None and result.launcher_command.startswith(LONG)
    assert "sk-live-abcdef0123456789abcdef" not in result.launcher_command
    assert result.config == {"from": "db"}


def test_an_unusual_metadata_file_still_gives_its_command(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    meta_path = written.directory / "artifacts" / "metadata.yaml"
    meta_path.write_text("base: &b run --fast\nlauncher_command: *b\n")
    assert read_task_result(_job_with_config(written), written.directory).launcher_command == "run --fast"
