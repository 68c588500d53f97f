"""The launcher's metadata a job carries: where its results are, and the command that started it."""

from __future__ import annotations

import yaml

from evalport.adapters.formats.nemo_evaluator import read_task_result
from evalport.domain.model import Job, LocalLocation, RemoteLocation
from evalport.testing.factory import write_launcher_home


def _job(written, **changes):
    fields = {
        "job_id": written.job_id,
        "invocation_id": written.invocation_id,
        "task_name": written.task,
        "executor": "local",
        "location": LocalLocation(str(written.directory)),
        "data": {},
    }
    fields.update(changes)
    return Job(**fields)


def test_the_launcher_command_is_read_from_metadata_with_its_secrets_masked(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    meta_path = written.directory / "artifacts" / "metadata.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["launcher_command"] = "nemo-evaluator-launcher run --api-key sk-live-abcdef0123456789abcdef -o x=1"
    meta_path.write_text(yaml.safe_dump(meta, width=40))
    result = read_task_result(_job(written), written.directory)
    assert result.launcher_command is not None
    assert result.launcher_command.startswith("nemo-evaluator-launcher run --api-key ")
    assert "sk-live-abcdef0123456789abcdef" not in result.launcher_command
    assert result.launcher_command.endswith("-o x=1")


def test_a_job_without_metadata_has_no_launcher_command(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    (written.directory / "artifacts" / "metadata.yaml").unlink()
    assert read_task_result(_job(written), written.directory).launcher_command is None


def test_results_dir_is_the_recorded_output_dir_of_a_local_job(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    job = _job(written, data={"output_dir": "nel-results/x/task.0"})
    assert read_task_result(job, written.directory).results_dir == "nel-results/x/task.0"


def test_results_dir_of_a_remote_job_is_host_colon_path_as_scp_takes_it(tmp_path):
    written = write_launcher_home(tmp_path, invocations=1, tasks_per_invocation=1).jobs[0]
    job = _job(
        written,
        executor="slurm",
        location=RemoteLocation("login-1", "/lustre/r/task.0"),
        data={"hostname": "login-1", "remote_rundir_path": "/lustre/r/task.0"},
    )
    assert read_task_result(job, written.directory).results_dir == "login-1:/lustre/r/task.0"
    bare = _job(written, location=RemoteLocation("login-2", "/lustre/s/task.0"), data={})
    assert bare.results_dir == "login-2:/lustre/s/task.0"
