"""The composition root: settings -> source -> reader -> sink registry -> planner -> ExportService.

The only module of ``evalport.app`` that imports adapters. Every entry point (the CLI's commands,
auto-export, watch, report, the Python API) gets its objects from a :class:`Container`; tests and
launchers override providers (``container.source.override(providers.Object(my_source))``) instead
of patching modules.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalport.domain.documents import DocumentLoader
from evalport.domain.fingerprint import item_fingerprint
from evalport.domain.ports import ExportLedger, ResultSource


def _import_dependency_injector() -> Any:
    """Imports ``dependency_injector.containers`` without its optional web-framework hooks.

    Its wiring module imports fastapi, starlette and werkzeug when they are installed (mlflow
    brings fastapi), which costs about 0.2 s on every CLI call; evalport uses no wiring, so those
    imports are blocked for the duration of this one import and then unblocked. So is
    ``pydantic_settings`` (for ``Configuration.from_pydantic``, which evalport does not use; another
    0.15 s on top of pydantic), and so are ``pydantic`` and ``yaml`` themselves: its providers look
    for them only to offer ``from_pydantic`` (pydantic 1 only) and ``from_yaml``, neither of which
    evalport uses, and ``ls`` and ``show`` need neither (0.03 s). They stay importable afterwards.
    """
    if "dependency_injector.containers" in sys.modules:
        return sys.modules["dependency_injector.containers"]
    blocked = _Unimportable(m for m in _OPTIONAL_HOOKS if m not in sys.modules)
    sys.meta_path.insert(0, blocked)
    try:
        from dependency_injector import containers
    finally:
        sys.meta_path.remove(blocked)
    return containers


_OPTIONAL_HOOKS = ("fastapi", "starlette", "werkzeug", "flask", "pydantic_settings", "pydantic", "yaml")


class _Unimportable(frozenset[str]):
    """A meta-path finder for which these top-level modules do not exist (ImportError, as when not
    installed). A ``None`` in ``sys.modules`` would not do: the compiled providers module finds it
    there and takes it for the module."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self:
            raise ModuleNotFoundError(f"{name} is not imported with dependency_injector", name=name)
        return None


if TYPE_CHECKING:
    from dependency_injector import containers
else:
    containers = _import_dependency_injector()
from dependency_injector import providers  # noqa: E402

from evalport.app.conform import complete_ledger, complete_source  # noqa: E402

if TYPE_CHECKING:
    from evalport.app.plan import Planner, SinkFactory
    from evalport.app.registry import Registry
    from evalport.app.service import ExportService
    from evalport.domain.ports import ResultReader

# Each provider below calls a factory that imports what it builds: ``ls`` and ``show`` build the
# service and the source, never the reader, the planner or a registry of sinks, so they import none
# of the export path (readers, plans, sink registries).


def source_registry() -> Registry:
    from evalport.app.registry import source_registry as registry

    return registry()


def sink_registry() -> Registry:
    from evalport.app.registry import sink_registry as registry

    return registry()


def make_reader() -> ResultReader:
    """The nemo-evaluator reader, behind the format dispatch (``--reader``, other harnesses)."""
    from evalport.adapters.formats.dispatch import Deferred, FormatReader
    from evalport.app.conform import complete_reader

    return complete_reader(FormatReader(Deferred(_nemo_evaluator_reader)))


def _nemo_evaluator_reader() -> Any:
    """The launcher format's reader (its ``read_many`` takes ``scan``, beyond the port's)."""
    from evalport.adapters.formats.nemo_evaluator import NemoEvaluatorReader

    return NemoEvaluatorReader()


def make_sink_factory(registry: Any) -> SinkFactory:
    from evalport.app.plan import SinkFactory

    return SinkFactory(registry=registry)


def make_planner(sinks: Any) -> Planner:
    from evalport.app.plan import Planner

    return Planner(sinks=sinks)


def make_service(**parts: Any) -> ExportService:
    from evalport.app.service import ExportService

    return ExportService(**parts)


def make_ledger(setting: Any) -> ExportLedger | None:
    """``True``: the default ledger in the state directory; a path: that file; ``False``: none."""
    if setting is False or setting is None:
        return None
    if setting is True or isinstance(setting, (str, Path)):
        from evalport.adapters.ledger import SqliteLedger

        return SqliteLedger(None if setting is True else setting)
    return complete_ledger(setting)


def document_loader() -> DocumentLoader:
    """How settings read ``--config`` files and ``-o`` values (bounded, safe YAML)."""
    from evalport.adapters.formats.documents import YamlDocumentLoader

    return YamlDocumentLoader()


def make_source(
    registry: Any,
    name: str,
    exec_db: str | None,
    job_dirs: Sequence[str],
    search_roots: Sequence[str] = (),
    reader: str | None = None,
) -> ResultSource:
    """A source from the registry by name (``slurm``, the default, or ``local``, or a plugin's).

    ``search_roots`` (the launcher's ``job_dirs``) and ``reader`` (``--reader``) are passed only
    when given, so a plugin source that does not take them still works without them."""
    extra: dict[str, Any] = {"search_roots": list(search_roots)} if search_roots else {}
    if reader:
        extra["reader"] = checked_reader(reader)
    return complete_source(registry.get(name)(exec_db=exec_db, job_dirs=list(job_dirs or ()), **extra))


def checked_reader(name: str) -> str:
    """``name`` when a reader is registered under it, else a usage error listing the readers."""
    from evalport.adapters.formats.detect import reader_names
    from evalport.domain.errors import UsageError

    if name not in reader_names():
        raise UsageError(f"--reader {name}: no such reader; the readers are {', '.join(reader_names())}")
    return name


def make_job_dir_source(job_dirs: Sequence[str], reader: str | None = None) -> ResultSource:
    """Only the given job directories, without the execution DB (what auto-export reads)."""
    from evalport.adapters.sources.local import LocalSource

    return LocalSource(
        job_dirs=list(job_dirs), use_exec_db=False, reader=checked_reader(reader) if reader else None
    )


class JobDirectories:
    """What auto-export asks of a job directory, answered by the nemo-evaluator adapters."""

    def job(self, job_dir: Path) -> Any:
        from evalport.adapters.sources.local import job_from_dir

        return job_from_dir(job_dir)

    def launcher_config(self, job_dir: Path) -> dict[str, Any]:
        from evalport.adapters.formats.nemo_evaluator import read_launcher_config

        return read_launcher_config(job_dir) or {}

    def stage_exit(self, job_dir: Path) -> Any:
        from evalport.adapters.formats.nemo_evaluator import read_stage_exit

        return read_stage_exit(job_dir)


class Reporting:
    """The report renderers and the atomic writer, for ``evalport report``."""

    def format_for(self, output: str | None, fmt: str | None) -> str:
        from evalport.adapters.report import format_for

        return format_for(output, fmt)

    def render(self, comparison: Any, fmt: str, **options: Any) -> str:
        from evalport.adapters.report import render

        return render(comparison, fmt, **options)

    def staged_links(self, folder: Path, results: Any) -> Any:
        from evalport.adapters.report import staged_links

        return staged_links(folder, results)

    def write(self, path: Path, text: str) -> None:
        from evalport.adapters.files import atomic_write_text

        atomic_write_text(path, text)


class SampleQueries:
    """The local sink's sample store, queried by ``evalport samples`` (DuckDB behind it)."""

    def store(self, folder: Path) -> Any:
        from evalport.adapters.sinks.local_sample_query import SampleStore

        return SampleStore(folder)


class Container(containers.DeclarativeContainer):
    config = providers.Configuration()

    source_registry = providers.Singleton(source_registry)
    sinks = providers.Singleton(sink_registry)
    source = providers.Singleton(
        providers.Selector(
            config.source_kind.as_(lambda v: v or "registry"),
            registry=providers.Factory(
                make_source,
                registry=source_registry,
                name=config.source.as_(lambda v: v or "slurm"),
                exec_db=config.exec_db,
                job_dirs=config.job_dirs.as_(lambda v: list(v or ())),
                search_roots=config.search_roots.as_(lambda v: list(v or ())),
                reader=config.reader,
            ),
            job_dirs=providers.Factory(
                make_job_dir_source,
                job_dirs=config.job_dirs.as_(lambda v: list(v or ())),
                reader=config.reader,
            ),
        )
    )
    reader = providers.Singleton(make_reader)
    sink_factory = providers.Factory(make_sink_factory, registry=sinks)
    planner = providers.Factory(make_planner, sinks=sink_factory)
    ledger = providers.Singleton(make_ledger, config.ledger.as_(lambda v: True if v is None else v))
    fingerprint = providers.Object(item_fingerprint)
    # Completed here too, so that a source or ledger put in by ``override`` (tests, launchers) gets
    # the port members it lacks (``warnings``, ``remember_signatures``) like a built one.
    service = providers.Factory(
        make_service,
        source=providers.Callable(complete_source, source),
        reader=reader,
        planner=planner,
        ledger=providers.Callable(complete_ledger, ledger),
        fingerprint=fingerprint,
    )
    job_directories = providers.Singleton(JobDirectories)
    reporting = providers.Singleton(Reporting)
    sample_queries = providers.Singleton(SampleQueries)


def build_container(
    *,
    exec_db: str | Path | None = None,
    job_dirs: Sequence[str | Path] = (),
    search_roots: Sequence[str | Path] = (),
    source: ResultSource | None = None,
    source_name: str = "slurm",
    source_kind: str = "registry",
    ledger: ExportLedger | str | Path | bool = True,
    reader: str | None = None,
) -> Container:
    """The wired container. ``source_kind="job_dirs"`` reads only ``job_dirs`` (no execution DB);
    ``search_roots`` are where ids the execution DB does not know are looked for (the launcher's
    ``job_dirs``); ``ledger=False`` exports without consulting or recording the ledger."""
    container = Container()
    container.config.from_dict(
        {
            "source": source_name,
            "source_kind": source_kind,
            "exec_db": str(exec_db) if exec_db else None,
            "job_dirs": [str(p) for p in job_dirs],
            "search_roots": [str(p) for p in search_roots],
            "reader": reader,
        }
    )
    if not isinstance(ledger, (bool, str, Path)):
        container.ledger.override(providers.Object(ledger))
    else:
        container.config.ledger.from_value(str(ledger) if isinstance(ledger, Path) else ledger)
    if source is not None:
        container.source.override(providers.Object(complete_source(source)))
    return container


def container_for(
    request: Any,
    *,
    exec_db: str | Path | None = None,
    job_dirs: Sequence[str | Path] = (),
    **options: Any,
) -> Container:
    """The container for an ExportRequest: the source also reads the ``exec_db`` its config document
    names (the command line's ``--exec-db`` wins) and searches the request's ``search_roots`` (its
    ``--job-dirs`` and the ``job_dirs`` of its config: at the top or in an ``export.<dest>`` block)."""
    roots = [*options.pop("search_roots", ()), *getattr(request, "search_roots", ())]
    options["reader"] = options.get("reader") or getattr(request, "reader", None)
    return build_container(
        exec_db=exec_db or request.exec_db,
        job_dirs=list(job_dirs),
        search_roots=list(dict.fromkeys(str(r) for r in roots)),
        **options,
    )
