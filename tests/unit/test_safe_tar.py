"""safe_tar refuses crafted archives and never writes outside the staging folder."""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest

from evalport.adapters.sources.safe_tar import UnsafeArchiveError, check_relative_name, extract_stream


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    buf.seek(0)
    return buf


def file(name: str, data: bytes = b"x", mtime: float = 1_700_000_000) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.mode = 0o4755  # setuid must not survive
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


@pytest.fixture
def box(tmp_path: Path) -> tuple[Path, Path]:
    """(staging folder, a sibling folder that must stay empty)."""
    stage, outside = tmp_path / "box" / "stage", tmp_path / "box" / "outside"
    stage.mkdir(parents=True)
    outside.mkdir()
    return stage, outside


def everything_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_plain_files_are_written_with_their_mtime_and_without_special_permission_bits(box):
    stage, _ = box
    got = extract_stream(make_tar(file("job/artifacts/results.yml", b"results: {}\n")), stage)
    target = stage / "job" / "artifacts" / "results.yml"
    assert got.files == ["job/artifacts/results.yml"]
    assert target.read_bytes() == b"results: {}\n"
    assert target.stat().st_mtime == 1_700_000_000
    assert target.stat().st_mode & 0o7777 == 0o644


@pytest.mark.parametrize(
    "name",
    ["../outside/evil", "job/../../outside/evil", "/tmp/evalport-absolute-evil", "..", "job/.."],
)
def test_names_that_leave_the_folder_are_refused_and_nothing_lands_outside(box, name):
    stage, outside = box
    with pytest.raises(UnsafeArchiveError):
        extract_stream(make_tar(file(name)), stage)
    assert everything_under(outside) == set()
    assert not Path("/tmp/evalport-absolute-evil").exists()
    assert not (stage.parent / "evil").exists()


def test_a_symlink_pointing_outside_is_refused_and_a_later_write_through_it_cannot_happen(box):
    stage, outside = box
    archive = make_tar(link("job", str(outside)), file("job/evil", b"owned"))
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract_stream(archive, stage)
    assert everything_under(outside) == set()
    assert everything_under(stage) == set()


def test_links_are_refused_by_default_even_inside_the_folder(box):
    stage, _ = box
    with pytest.raises(UnsafeArchiveError, match="links are not accepted"):
        extract_stream(make_tar(file("job/a"), link("job/b", "a")), stage)


def test_inside_links_are_allowed_when_asked_but_relative_escapes_are_not(box):
    stage, outside = box
    extract_stream(make_tar(file("job/a", b"A"), link("job/b", "a")), stage, allow_links=True)
    assert (stage / "job" / "b").read_bytes() == b"A"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_stream(make_tar(link("job/c", "../../outside")), stage, allow_links=True)
    with pytest.raises(UnsafeArchiveError):
        extract_stream(make_tar(link("job/d", "/etc/passwd", tarfile.LNKTYPE)), stage, allow_links=True)
    assert everything_under(outside) == set()


def test_a_hard_link_to_a_file_outside_the_archive_is_refused(box):
    stage, _ = box
    with pytest.raises(UnsafeArchiveError):
        extract_stream(make_tar(link("job/passwd", "etc/passwd", tarfile.LNKTYPE)), stage, allow_links=True)
    assert not (stage / "job" / "passwd").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_devices_and_fifos_are_refused(box, kind):
    stage, _ = box
    with pytest.raises(UnsafeArchiveError, match=r"device|FIFO|special"):
        extract_stream(make_tar(special("job/dev", kind)), stage)
    assert not os.path.lexists(stage / "job" / "dev")


def test_a_symlink_already_in_the_folder_is_not_followed(box):
    stage, outside = box
    (stage / "job").symlink_to(outside)
    with pytest.raises(UnsafeArchiveError):
        extract_stream(make_tar(file("job/evil")), stage)
    assert everything_under(outside) == set()


def test_rename_maps_members_and_refuses_names_that_were_not_asked_for(box):
    stage, _ = box
    wanted = {"lustre/u/run/job.0/artifacts/results.yml": "J0/artifacts/results.yml"}
    got = extract_stream(
        make_tar(file("./lustre/u/run/job.0/artifacts/results.yml", b"r")), stage, rename=wanted.get
    )
    assert got.files == ["J0/artifacts/results.yml"]
    with pytest.raises(UnsafeArchiveError, match="asked for"):
        extract_stream(make_tar(file("lustre/u/run/job.0/.secrets.env")), stage, rename=wanted.get)
    assert not (stage / "lustre").exists()


def test_relative_names_are_normalized_and_backslash_drive_and_nul_forms_refused():
    assert check_relative_name("./a//b/./c") == "a/b/c"
    for bad in ["C:/x", "\\\\server\\x", "a\x00b", "", "."]:
        with pytest.raises(UnsafeArchiveError):
            check_relative_name(bad)


def test_a_large_stream_is_read_sequentially_from_a_pipe(box):
    stage, _ = box
    data = os.urandom(3 * 1024 * 1024)
    raw = make_tar(file("job/big.bin", data, mtime=time.time())).getvalue()
    read_fd, write_fd = os.pipe()

    def writer() -> None:  # like ssh on the other end of the pipe: no seeking possible
        with os.fdopen(write_fd, "wb") as out:
            out.write(raw)

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb") as stream:
        extract_stream(stream, stage)
    thread.join()
    assert (stage / "job" / "big.bin").read_bytes() == data
