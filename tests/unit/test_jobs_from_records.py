"""The local source's jobs from execution-DB records: the batch path (``jobs_from_records``, task
names looked up once per shared config) makes exactly the jobs ``job_from_record`` makes one by one."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from evalport.adapters.sources.local import job_from_record, jobs_from_records
from evalport.adapters.sources.records import ExecDbRecord

INV = "abcdef0123456789"

task_entries = st.one_of(
    st.fixed_dictionaries(
        {"name": st.one_of(st.text(max_size=6), st.integers(), st.floats(), st.booleans())}
    ),
    st.just({}),
    st.just({"name": None}),
    st.text(max_size=4),
    st.integers(),
)
configs = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"evaluation": st.fixed_dictionaries({"tasks": st.lists(task_entries, max_size=4)})}
    ),
    st.fixed_dictionaries({"evaluation": st.one_of(st.just([]), st.just("x"), st.just({"tasks": "x"}))}),
)
datas = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"output_dir": st.sampled_from(["", "/runs/inv/mmlu.0", "/runs/inv/odd", "/runs/inv/x.7/"])}
    ),
    st.fixed_dictionaries(
        {"output_dir": st.just(""), "remote_rundir_path": st.just("/nowhere/here/gsm8k.2")}
    ),
    st.fixed_dictionaries(
        {"remote_rundir_path": st.just("/nowhere/x/a.1"), "hostname": st.just("h"), "username": st.just("u")}
    ),
)
tails = st.one_of(st.integers(min_value=0, max_value=5).map(str), st.sampled_from(["x", "1.2", "0a"]))


@st.composite
def record_sets(draw: st.DrawFn) -> dict[str, ExecDbRecord]:
    """Records whose configs are shared by several jobs, as the launcher's invocations share theirs."""
    shared = draw(st.lists(configs, min_size=1, max_size=3))
    records: dict[str, ExecDbRecord] = {}
    for number in range(draw(st.integers(min_value=1, max_value=8))):
        job_id = f"{INV}.{draw(tails)}{'' if number == 0 else f'-{number}'}"
        config = shared[draw(st.integers(min_value=0, max_value=len(shared) - 1))]
        executor = draw(st.sampled_from(["local", "slurm", ""]))
        records[job_id] = ExecDbRecord(
            job_id, INV, executor, draw(st.none() | st.floats(0, 2e9)), draw(datas), config
        )
    return records


@settings(max_examples=300, deadline=None)
@given(record_sets())
def test_the_jobs_made_from_many_records_at_once_are_those_made_one_by_one(records):
    together = jobs_from_records(records)
    one_by_one = {job_id: job_from_record(rec) for job_id, rec in records.items()}
    assert list(together) == list(one_by_one)
    for job_id, job in together.items():
        alone = one_by_one[job_id]
        assert (job, job.task_name, job.location, job.executor) == (
            alone,
            alone.task_name,
            alone.location,
            alone.executor,
        )
        assert job.config is alone.config and job.data is alone.data


def test_jobs_sharing_a_config_each_get_the_task_name_at_their_own_index():
    config = {"evaluation": {"tasks": [{"name": "mmlu"}, {"name": 7}, {"name": ""}]}}
    records = {
        f"{INV}.{i}": ExecDbRecord(
            f"{INV}.{i}", INV, "local", None, {"output_dir": f"/r/i/folder{i}.{i}"}, config
        )
        for i in range(4)
    }
    names = [job.task_name for job in jobs_from_records(records).values()]
    assert names == ["mmlu", "7", "folder2", "folder3"]
